//! The route table and the middleware around it.

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::state::SharedState;
use crate::{agents, models, openai};

/// Every API route, with JSON 404/405 answers and the body limit. Probes,
/// request ids and request logging live in the outer router (`front`).
pub fn build(state: SharedState) -> Router {
    let body_limit = state.max_body_bytes;
    Router::new()
        .route("/v1/chat/completions", post(openai::chat::completions))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{id}", get(models::retrieve))
        .route("/v1/agents", get(agents::list))
        .route(
            "/v1/agents/{id}",
            get(agents::retrieve).delete(agents::delete),
        )
        .route("/v1/agents/{id}/evict", post(agents::evict))
        // Applies to the routes above, so it must follow them.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        // `ApiJson` enforces the limit itself; this covers axum's own body
        // extractors should a route ever use one.
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(method.as_str(), uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}
