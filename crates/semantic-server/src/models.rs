//! `GET /v1/models` and the rule for which `model` names a request may use.
//!
//! One model is loaded; clients may call it by its id or by `"default"`
//! (handy for tools whose configuration needs some model name).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use crate::error::ApiError;
use crate::state::{AppState, SharedState};

/// The alias every request may use for the loaded model.
pub const DEFAULT_MODEL: &str = "default";

/// One entry of the model list (OpenAI shape plus our extras).
#[derive(Debug, Serialize)]
pub struct ModelCard {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
    /// Most positions one request may use (prompt plus completion).
    pub context_length: u32,
    pub kv_type: String,
    pub architecture: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelCard>,
}

/// `GET /v1/models`.
pub async fn list(State(state): State<SharedState>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: vec![card(&state)],
    })
}

/// `GET /v1/models/{id}`.
pub async fn retrieve(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<ModelCard>, ApiError> {
    if !serves(&state, &id) {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            ..unknown_model(&state, &id)
        });
    }
    Ok(Json(card(&state)))
}

fn card(state: &AppState) -> ModelCard {
    let info = state.engine.model().info();
    ModelCard {
        id: state.model_id.clone(),
        object: "model",
        created: state.model_created,
        owned_by: "semantic",
        context_length: state.engine.context_window(),
        kv_type: state.engine.config().kv_type.to_string(),
        architecture: info.architecture.clone(),
        display_name: info.display_name.clone(),
    }
}

/// Check a requested model name; the error names what is available.
pub fn resolve(state: &AppState, requested: &str) -> Result<(), ApiError> {
    if serves(state, requested) {
        Ok(())
    } else {
        Err(unknown_model(state, requested))
    }
}

fn serves(state: &AppState, name: &str) -> bool {
    name == DEFAULT_MODEL || name == state.model_id
}

fn unknown_model(state: &AppState, requested: &str) -> ApiError {
    ApiError::invalid_request(format!(
        "unknown model {requested:?}; available: {:?} (or {DEFAULT_MODEL:?})",
        state.model_id
    ))
    .with_param("model")
    .with_code("model_not_found")
}
