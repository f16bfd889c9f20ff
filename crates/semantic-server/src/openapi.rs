//! `GET /openapi.json`: the API description, written by hand in
//! `openapi.json` next to this file (our wire types are plain serde types,
//! and a static document keeps the schemas readable). A test checks that
//! every path the router serves is described, so a route cannot be added
//! without its documentation.

use axum::http::header;
use axum::response::IntoResponse;

/// The OpenAPI 3.1 document, served as written.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /openapi.json` (no key needed).
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
