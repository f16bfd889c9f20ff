//! Liveness probe: answers as long as the HTTP server runs, without touching
//! the engine, so an orchestrator does not restart us during a long prefill.

use axum::Json;
use serde_json::{json, Value};

/// `GET /health/live`.
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
