//! `GET /v1/models` and the rule for which `model` names a request may use.
//!
//! One model is loaded; clients may call it by its id, by `"default"`
//! (handy for tools whose configuration needs some model name), or by any
//! name `--model-alias` maps to one of those (see [`crate::model_alias`]).

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
    /// Model layers offloaded to a GPU (`--n-gpu-layers`; 0 on the CPU).
    pub gpu_layers: u32,
    /// The backend computing the offloaded layers, `CPU` when none is.
    /// Batch invariance is promised on the CPU backend only.
    pub compute_backend: String,
    pub architecture: String,
    pub display_name: Option<String>,
    /// Names `--model-alias` maps to this model (the catch-all excluded).
    pub aliases: Vec<String>,
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
    if resolve(&state, &id).is_err() {
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
        gpu_layers: info.offload.gpu_layers,
        compute_backend: info.offload.backend.clone(),
        architecture: info.architecture.clone(),
        display_name: info.display_name.clone(),
        aliases: aliases_of(state),
    }
}

fn aliases_of(state: &AppState) -> Vec<String> {
    let table = &state.gateway.model_aliases;
    let to_default = table.names_for(DEFAULT_MODEL);
    let to_id = table.names_for(&state.model_id);
    to_default.chain(to_id).map(str::to_owned).collect()
}

/// Check a requested model name, directly or through its alias; the error
/// names what is available.
pub fn resolve(state: &AppState, requested: &str) -> Result<(), ApiError> {
    if serves(state, requested) {
        return Ok(());
    }
    match state.gateway.model_aliases.target(requested) {
        Some(target) if serves(state, target) => Ok(()),
        Some(target) => Err(ApiError::invalid_request(format!(
            "model {requested:?} is an alias of {target:?} (--model-alias), which is not loaded; available: {:?} (or {DEFAULT_MODEL:?})",
            state.model_id
        ))
        .with_param("model")
        .with_code("model_not_found")),
        None => Err(unknown_model(state, requested)),
    }
}

/// Aliases whose target is not the loaded model: requests using them fail
/// until a model of that id is loaded (worth a warning at start-up).
pub fn dangling_aliases(state: &AppState) -> Vec<String> {
    let table = &state.gateway.model_aliases;
    let dangling = table.iter().filter(|a| !serves(state, &a.target));
    dangling.map(ToString::to_string).collect()
}

fn serves(state: &AppState, name: &str) -> bool {
    name == DEFAULT_MODEL || name == state.model_id
}

fn unknown_model(state: &AppState, requested: &str) -> ApiError {
    let aliases = aliases_of(state);
    let also = if aliases.is_empty() {
        String::new()
    } else {
        format!(", aliases {aliases:?}")
    };
    ApiError::invalid_request(format!(
        "unknown model {requested:?}; available: {:?} (or {DEFAULT_MODEL:?}{also}); --model-alias NAME=MODEL maps other names",
        state.model_id
    ))
    .with_param("model")
    .with_code("model_not_found")
}
