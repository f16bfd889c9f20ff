//! `/admin/*`: operator routes, behind the admin key (see [`crate::auth`]).
//!
//! - `GET /admin/models/current`: what is serving and since when;
//! - `POST /admin/models/load {"path"}`: hot swap to another GGUF
//!   ([`crate::swap`]); the old model keeps serving if the new one fails;
//! - `GET /admin/agents[?tenant=NAME]`: every tenant's agents (or one
//!   tenant's), each with its tenant;
//! - `DELETE /admin/caches`: forget every agent's cache (hot, warm, disk)
//!   of the serving model, every tenant's.

use std::path::PathBuf;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use semantic_engine::EngineError;
use serde::{Deserialize, Serialize};

use crate::agents::{listing, AgentList};
use crate::error::{from_engine, ApiError, MaxTokensField};
use crate::extract::ApiJson;
use crate::state::{AppState, RouterState, SharedState};
use crate::swap::{hot_swap, SwapError};

/// The admin routes, merged into the main router.
pub fn routes() -> Router<RouterState> {
    Router::new()
        .route("/admin/models/current", get(current))
        .route("/admin/models/load", post(load))
        .route("/admin/caches", delete(clear_caches))
        .route("/admin/agents", get(agents))
}

#[derive(Debug, Default, Deserialize)]
pub struct AgentsQuery {
    /// Only this tenant's agents.
    pub tenant: Option<String>,
}

/// `GET /admin/agents[?tenant=NAME]`: agents across tenants, most recent first.
pub async fn agents(
    State(state): State<SharedState>,
    query: Result<Query<AgentsQuery>, QueryRejection>,
) -> Result<Json<AgentList>, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::invalid_request(format!("invalid query string: {}", e.body_text()))
            .with_param("tenant")
    })?;
    let tenant = query
        .tenant
        .map(|raw| {
            semantic_domain::TenantId::parse_any(&raw).map_err(|e| {
                ApiError::invalid_request(format!("invalid tenant {raw:?}: {e}"))
                    .with_param("tenant")
            })
        })
        .transpose()?;
    Ok(Json(listing(&state.engine, tenant.as_ref()).await?))
}

/// The serving model, as `GET /admin/models/current` shows it.
#[derive(Debug, Serialize)]
pub struct CurrentModel {
    pub id: String,
    pub path: String,
    /// SHA-256 of the GGUF header; agents' files are stored under it.
    pub fingerprint: String,
    pub architecture: String,
    pub kv_type: String,
    /// Most positions one request may use.
    pub context_length: u32,
    /// Unix seconds when this model started serving.
    pub loaded_at: u64,
}

impl CurrentModel {
    fn of(state: &AppState) -> Self {
        let info = state.engine.model().info();
        Self {
            id: state.model_id.clone(),
            path: info.path.display().to_string(),
            fingerprint: info.fingerprint.clone(),
            architecture: info.architecture.clone(),
            kv_type: state.engine.config().kv_type.to_string(),
            context_length: state.engine.context_window(),
            loaded_at: state.loaded_at,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LoadModelRequest {
    /// Path of the GGUF file, as the server process sees it.
    pub path: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct LoadedModelReport {
    pub model: CurrentModel,
    pub previous_path: String,
    /// False when in-flight requests did not finish within the drain
    /// timeout and were failed.
    pub drained: bool,
    pub elapsed_ms: u64,
}

/// Counts of `DELETE /admin/caches`, by the tier each agent was in.
#[derive(Debug, Default, Serialize)]
pub struct ClearedCaches {
    pub deleted: u32,
    pub hot: u32,
    pub warm: u32,
    pub disk: u32,
    /// Agents with a request in flight, left alone.
    pub busy: Vec<String>,
}

/// `GET /admin/models/current`.
pub async fn current(State(state): State<SharedState>) -> Json<CurrentModel> {
    Json(CurrentModel::of(&state))
}

/// `POST /admin/models/load`.
pub async fn load(
    State(router): State<RouterState>,
    ApiJson(body): ApiJson<LoadModelRequest>,
) -> Result<Json<LoadedModelReport>, ApiError> {
    let report = hot_swap(&router, body.path).await?;
    Ok(Json(LoadedModelReport {
        model: CurrentModel::of(&router.current()),
        previous_path: report.previous.display().to_string(),
        drained: report.drained,
        elapsed_ms: u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX),
    }))
}

/// `DELETE /admin/caches`: every agent of the serving model, files included.
pub async fn clear_caches(
    State(state): State<SharedState>,
) -> Result<Json<ClearedCaches>, ApiError> {
    let engine_error = |e| from_engine(e, MaxTokensField::default());
    let agents = state.engine.agents().await.map_err(engine_error)?;
    let mut cleared = ClearedCaches::default();
    for agent in agents {
        if !state
            .engine
            .delete_agent(agent.agent.clone(), false)
            .await
            .map_err(engine_error)?
        {
            cleared.busy.push(agent.agent.to_string());
            continue;
        }
        cleared.deleted += 1;
        match agent.tier {
            "hot" => cleared.hot += 1,
            "warm" => cleared.warm += 1,
            _ => cleared.disk += 1,
        }
    }
    Ok(Json(cleared))
}

impl From<SwapError> for ApiError {
    fn from(err: SwapError) -> Self {
        let message = err.to_string();
        let with_status = |status, code| ApiError {
            status,
            ..ApiError::invalid_request(message.clone()).with_code(code)
        };
        match err {
            SwapError::Unavailable => {
                with_status(StatusCode::NOT_IMPLEMENTED, "hot_swap_unavailable")
            }
            SwapError::Busy => with_status(StatusCode::CONFLICT, "swap_in_progress"),
            SwapError::EmptyPath => ApiError::invalid_request(message.clone()).with_param("path"),
            SwapError::Rejected { source, .. } | SwapError::RolledBack { source, .. } => {
                let status = match source {
                    EngineError::ModelNotFound(_) => StatusCode::NOT_FOUND,
                    _ => StatusCode::BAD_REQUEST,
                };
                let code = match source {
                    EngineError::ModelNotFound(_) => "model_file_not_found",
                    _ => "invalid_model",
                };
                with_status(status, code).with_param("path")
            }
            SwapError::RollbackFailed { .. } => {
                ApiError::internal(message.clone()).with_code("no_model_serving")
            }
            SwapError::Internal(_) => ApiError::internal(message.clone()),
        }
    }
}
