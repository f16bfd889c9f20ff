//! `/v1/agents`: what the engine holds for each agent, and operator actions
//! on it (our extension; OpenAI has no such resource).
//!
//! Every route acts on the caller's tenant only: another tenant's agent is
//! a 404, exactly as if it did not exist (its existence is not revealed).
//! `/admin/agents` lists across tenants.
//!
//! Listing and lookup read the engine's agent registry. Delete and evict
//! are refused while a request of the agent is in flight, because its cells
//! are in use; the engine answers such a refusal with the same `false` as
//! for an unknown agent, so handlers check the registry first to tell the
//! two apart (404 vs 409).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use semantic_domain::{AgentId, AgentKey, InvalidAgentId, TenantId};
use semantic_engine::{AgentInfo, EngineError, EngineHandle, EvictTarget};
use serde::{Deserialize, Serialize};

use crate::error::{from_engine, ApiError, MaxTokensField};
use crate::extract::ApiJson;
use crate::state::{unix_seconds, SharedState};
use crate::tenant::CallerTenant;

/// Why an agents request failed, before it becomes an HTTP envelope.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid agent id {raw:?}: {reason}")]
    InvalidId { raw: String, reason: InvalidAgentId },
    #[error("the agent id in the path is not valid UTF-8 once decoded: {0}")]
    UndecodablePath(String),
    #[error("no agent {:?} is cached (hot, warm or on disk)", .0.agent.as_str())]
    NotFound(AgentKey),
    #[error("agent {:?} has a request in flight; retry when it finishes", .0.agent.as_str())]
    Busy(AgentKey),
    #[error("invalid query string: {0}")]
    BadQuery(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<AgentError> for ApiError {
    fn from(err: AgentError) -> Self {
        let message = err.to_string();
        let status = |status, code| ApiError {
            status,
            ..ApiError::invalid_request(message.clone()).with_code(code)
        };
        match err {
            AgentError::InvalidId { .. } | AgentError::UndecodablePath(_) => {
                ApiError::invalid_request(message).with_code("invalid_agent_id")
            }
            AgentError::BadQuery(_) => ApiError::invalid_request(message).with_param("keep_disk"),
            AgentError::NotFound(_) => status(StatusCode::NOT_FOUND, "agent_not_found"),
            AgentError::Busy(_) => status(StatusCode::CONFLICT, "agent_busy"),
            AgentError::Engine(e) => from_engine(e, MaxTokensField::default()),
        }
    }
}

/// One agent as the API shows it.
#[derive(Debug, Serialize)]
pub struct AgentCard {
    pub id: String,
    /// The tenant that owns the agent (the caller's own on `/v1/agents`).
    pub tenant: String,
    /// `hot`, `warm`, `disk` or `loading`.
    pub tier: &'static str,
    /// Tokens whose KV the agent's cache holds.
    pub tokens: u32,
    /// Size of the agent's saved state (0 until it was first snapshotted).
    pub bytes: u64,
    /// Unix seconds of the agent's last turn.
    pub last_used_at: u64,
}

impl From<AgentInfo> for AgentCard {
    fn from(a: AgentInfo) -> Self {
        Self {
            id: a.agent.agent.to_string(),
            tenant: a.agent.tenant.to_string(),
            tier: a.tier,
            tokens: a.tokens,
            bytes: a.state_bytes,
            last_used_at: unix_seconds(a.last_use),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AgentList {
    pub object: &'static str,
    pub data: Vec<AgentCard>,
}

#[derive(Debug, Serialize)]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeleteQuery {
    /// Evict from memory only, keeping the agent's file.
    #[serde(default)]
    pub keep_disk: bool,
}

/// The tier an operator asks for; the body of `POST .../evict`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvictTier {
    Warm,
    Disk,
}

#[derive(Debug, Deserialize)]
pub struct EvictRequest {
    pub tier: EvictTier,
}

#[derive(Debug, Serialize)]
pub struct Evicted {
    pub id: String,
    /// Where the agent is now. `warm` after asking for `disk` means the
    /// server has no disk tier.
    pub tier: &'static str,
}

/// `GET /v1/agents`: the caller's tenant's agents, most recently used first.
pub async fn list(
    State(state): State<SharedState>,
    CallerTenant(tenant): CallerTenant,
) -> Result<Json<AgentList>, ApiError> {
    Ok(Json(listing(&state.engine, Some(&tenant)).await?))
}

/// The agents of `tenant` (of every tenant with `None`), most recent first.
pub async fn listing(
    engine: &EngineHandle,
    tenant: Option<&TenantId>,
) -> Result<AgentList, AgentError> {
    let agents = engine.agents().await?;
    Ok(AgentList {
        object: "list",
        data: agents
            .into_iter()
            .filter(|a| tenant.is_none_or(|t| a.agent.tenant == *t))
            .map(AgentCard::from)
            .collect(),
    })
}

/// `GET /v1/agents/{id}`.
pub async fn retrieve(
    State(state): State<SharedState>,
    tenant: CallerTenant,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<AgentCard>, ApiError> {
    let agent = tenant.agent(agent_id(path)?);
    let info = find(&state.engine, &agent)
        .await?
        .ok_or(AgentError::NotFound(agent))?;
    Ok(Json(info.into()))
}

/// `DELETE /v1/agents/{id}[?keep_disk=true]`.
pub async fn delete(
    State(state): State<SharedState>,
    tenant: CallerTenant,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<Json<Deleted>, ApiError> {
    let agent = tenant.agent(agent_id(path)?);
    let Query(query) = query.map_err(|e| AgentError::BadQuery(e.body_text()))?;
    require_known(&state.engine, &agent).await?;
    let done = state
        .engine
        .delete_agent(agent.clone(), query.keep_disk)
        .await
        .map_err(AgentError::from)?;
    if !done {
        return Err(refusal(&state.engine, agent).await.into());
    }
    Ok(Json(Deleted {
        id: agent.agent.to_string(),
        deleted: true,
    }))
}

/// `POST /v1/agents/{id}/evict` with `{"tier": "warm" | "disk"}`.
pub async fn evict(
    State(state): State<SharedState>,
    tenant: CallerTenant,
    path: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<EvictRequest>,
) -> Result<Json<Evicted>, ApiError> {
    let agent = tenant.agent(agent_id(path)?);
    require_known(&state.engine, &agent).await?;
    let target = match body.tier {
        EvictTier::Warm => EvictTarget::Warm,
        EvictTier::Disk => EvictTarget::Disk,
    };
    let done = state
        .engine
        .evict_agent(agent.clone(), target)
        .await
        .map_err(AgentError::from)?;
    if !done {
        return Err(refusal(&state.engine, agent).await.into());
    }
    let info = find(&state.engine, &agent)
        .await?
        .ok_or_else(|| AgentError::NotFound(agent.clone()))?;
    Ok(Json(Evicted {
        id: agent.agent.to_string(),
        tier: info.tier,
    }))
}

/// Validate the path's agent id. Percent-decoding happens first, so an
/// encoded `..%2Fetc` arrives here as `../etc` and is refused before it
/// can reach the engine or the store.
fn agent_id(path: Result<Path<String>, PathRejection>) -> Result<AgentId, AgentError> {
    let Path(raw) = path.map_err(|e| AgentError::UndecodablePath(e.body_text()))?;
    AgentId::parse(&raw).map_err(|reason| AgentError::InvalidId { raw, reason })
}

async fn find(engine: &EngineHandle, agent: &AgentKey) -> Result<Option<AgentInfo>, AgentError> {
    let agents = engine.agents().await?;
    Ok(agents.into_iter().find(|a| &a.agent == agent))
}

async fn require_known(engine: &EngineHandle, agent: &AgentKey) -> Result<(), AgentError> {
    match find(engine, agent).await? {
        Some(_) => Ok(()),
        None => Err(AgentError::NotFound(agent.clone())),
    }
}

/// The engine refused an action on an agent that was known a moment ago:
/// busy if it is still known, else it went away in between.
async fn refusal(engine: &EngineHandle, agent: AgentKey) -> AgentError {
    match find(engine, &agent).await {
        Ok(Some(_)) => AgentError::Busy(agent),
        Ok(None) => AgentError::NotFound(agent),
        Err(e) => e,
    }
}
