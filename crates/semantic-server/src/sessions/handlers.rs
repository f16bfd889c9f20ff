//! The `/v1/sessions` routes, on the caller's tenant only: another
//! tenant's session is the same 404 as a missing one.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use axum::Json;
use semantic_domain::sessions::model::MAX_SESSION_ID_LEN;
use semantic_domain::sessions::{view, Lifecycle, NextTurn, Session, SessionStore};
use semantic_domain::TenantId;
use tokio::sync::mpsc;

use super::claim::Claim;
use super::events;
use super::generate::{Sink, TurnContext};
use super::turn::{persist, run_round, session_error, take_turn};
use super::types::{
    CreateSessionRequest, DeletedObject, EntryObject, MessageRequest, RoundObject, RoundRequest,
    SessionObject, TurnRequest, ViewObject, ViewQuery,
};
use crate::error::{from_engine, ApiError, MaxTokensField};
use crate::extract::ApiJson;
use crate::responses::chain::off_runtime;
use crate::sse;
use crate::state::{now_unix, SharedState};
use crate::tenant::CallerTenant;

/// `POST /v1/sessions`.
pub async fn create(
    State(state): State<SharedState>,
    CallerTenant(tenant): CallerTenant,
    ApiJson(req): ApiJson<CreateSessionRequest>,
) -> Result<Json<SessionObject>, ApiError> {
    let spec = req.into_spec(state.engine.config().default_temperature)?;
    let id = format!("sess_{}", uuid::Uuid::new_v4().simple());
    let session = Session::create(id, now_unix(), spec).map_err(session_error)?;
    let object = SessionObject::from(&session);
    persist(state.gateway.sessions.clone(), tenant, session).await?;
    Ok(Json(object))
}

/// `GET /v1/sessions/{id}[?participant=…]`: the transcript, or what one
/// participant sees (the messages its next prompt is rendered from).
pub async fn retrieve(
    State(state): State<SharedState>,
    CallerTenant(tenant): CallerTenant,
    Path(id): Path<String>,
    query: Result<Query<ViewQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let session = load(&state, &tenant, &id).await?;
    let Some(participant) = query.participant else {
        return Ok(Json(SessionObject::from(&session)).into_response());
    };
    let index = session
        .require("participant", &participant)
        .map_err(session_error)?;
    Ok(Json(ViewObject {
        object: "session.view",
        session_id: session.id.clone(),
        participant,
        agent_id: session.agent_of(index).ok().map(|a| a.to_string()),
        messages: view(&session, index),
    })
    .into_response())
}

/// `POST /v1/sessions/{id}/turn`.
pub async fn turn(
    State(state): State<SharedState>,
    CallerTenant(tenant): CallerTenant,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TurnRequest>,
) -> Result<Response, ApiError> {
    let (claim, mut session) = claim_and_load(&state, &tenant, &id).await?;
    let next = session
        .next_turn(req.speaker.as_deref())
        .map_err(session_error)?;
    if req.stream {
        return Ok(streamed(claim, state, tenant, session, Work::Turn(next)));
    }
    let sink = Sink::none();
    let ctx = TurnContext {
        state: &state,
        tenant: &tenant,
        sink: &sink,
    };
    let (_, turn) = take_turn(&ctx, &mut session, next).await?;
    Ok(Json(turn).into_response())
}

/// `POST /v1/sessions/{id}/round`.
pub async fn round(
    State(state): State<SharedState>,
    CallerTenant(tenant): CallerTenant,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RoundRequest>,
) -> Result<Response, ApiError> {
    let (claim, mut session) = claim_and_load(&state, &tenant, &id).await?;
    // Refuse a finished session before any stream starts.
    session.round_plan().map_err(session_error)?;
    if req.stream {
        return Ok(streamed(claim, state, tenant, session, Work::Round));
    }
    let sink = Sink::none();
    let ctx = TurnContext {
        state: &state,
        tenant: &tenant,
        sink: &sink,
    };
    let turns = run_round(&ctx, &mut session).await?;
    Ok(Json(RoundObject {
        object: "session.round",
        session_id: session.id.clone(),
        turns,
        finished: session.is_finished(),
    })
    .into_response())
}

/// `POST /v1/sessions/{id}/messages`: a public message, or a whisper.
pub async fn messages(
    State(state): State<SharedState>,
    CallerTenant(tenant): CallerTenant,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<MessageRequest>,
) -> Result<Json<EntryObject>, ApiError> {
    if req.content.is_empty() {
        return Err(ApiError::invalid_request("content must not be empty").with_param("content"));
    }
    let (_claim, mut session) = claim_and_load(&state, &tenant, &id).await?;
    let entry = session
        .add_message(now_unix(), req.name, req.content, req.to.as_deref())
        .map_err(session_error)?
        .clone();
    let session_id = session.id.clone();
    persist(state.gateway.sessions.clone(), tenant, session).await?;
    Ok(Json(EntryObject {
        object: "session.entry",
        session_id,
        entry,
    }))
}

/// `DELETE /v1/sessions/{id}`: the session, and its ephemeral
/// participants' agents (KV in every tier and their files); permanent
/// participants' agents stay.
pub async fn delete(
    State(state): State<SharedState>,
    CallerTenant(tenant): CallerTenant,
    Path(id): Path<String>,
) -> Result<Json<DeletedObject>, ApiError> {
    let (_claim, session) = claim_and_load(&state, &tenant, &id).await?;
    let mut removed_agents = Vec::new();
    let mut kept_agents = Vec::new();
    for (index, participant) in session.participants.iter().enumerate() {
        let Ok(agent) = session.agent_of(index) else {
            continue;
        };
        if participant.lifecycle == Lifecycle::Permanent {
            kept_agents.push(agent.to_string());
            continue;
        }
        // `false`: the agent holds nothing (it never spoke, or went past
        // the disk budget), or a request outside the session is using its
        // id right now (then its cache stays, and it is not listed).
        let removed = state
            .engine
            .delete_agent(
                semantic_domain::AgentKey::new(tenant.clone(), agent.clone()),
                false,
            )
            .await
            .map_err(|e| from_engine(e, MaxTokensField::default()))?;
        if removed {
            removed_agents.push(agent.to_string());
        }
    }
    let store = state.gateway.sessions.clone();
    let deleted = {
        let (tenant, id) = (tenant.clone(), id.clone());
        off_runtime(move || {
            store
                .delete_session(&tenant, &id)
                .map_err(|e| ApiError::internal(format!("the session store failed: {e}")))
        })
        .await?
    };
    if !deleted {
        return Err(not_found(&id));
    }
    Ok(Json(DeletedObject {
        id,
        object: "session.deleted",
        deleted: true,
        removed_agents,
        kept_agents,
    }))
}

/// Session `id` of `tenant`, or a 404.
async fn load(state: &SharedState, tenant: &TenantId, id: &str) -> Result<Session, ApiError> {
    if id.is_empty() || id.len() > MAX_SESSION_ID_LEN {
        return Err(not_found(id));
    }
    let store: std::sync::Arc<dyn SessionStore> = state.gateway.sessions.clone();
    let (tenant, key) = (tenant.clone(), id.to_owned());
    let found = off_runtime(move || {
        store
            .get_session(&tenant, &key)
            .map_err(|e| ApiError::internal(format!("the session store failed: {e}")))
    })
    .await?;
    found.map(|s| s.session).ok_or_else(|| not_found(id))
}

/// Hold the session for this request (409 if another holds it), then
/// read it: read after the claim, so no other request's turn is lost.
async fn claim_and_load(
    state: &SharedState,
    tenant: &TenantId,
    id: &str,
) -> Result<(Claim, Session), ApiError> {
    if id.is_empty() || id.len() > MAX_SESSION_ID_LEN {
        return Err(not_found(id));
    }
    let claim = state.gateway.session_claims.claim(tenant, id)?;
    let session = load(state, tenant, id).await?;
    Ok((claim, session))
}

fn not_found(id: &str) -> ApiError {
    ApiError::from_status(
        StatusCode::NOT_FOUND,
        format!("Session with id '{id}' not found."),
    )
    .with_code("session_not_found")
}

/// What a streamed request runs.
enum Work {
    Turn(NextTurn),
    Round,
}

/// Run `work` in a task that streams its events; the task holds the
/// session's claim until it ends, and stops (cancelling the generation)
/// when the client goes away.
fn streamed(
    claim: Claim,
    state: SharedState,
    tenant: TenantId,
    mut session: Session,
    work: Work,
) -> Response {
    let (sender, receiver) = mpsc::channel::<Event>(64);
    tokio::spawn(async move {
        let _claim = claim;
        let sink = Sink::to(sender);
        let ctx = TurnContext {
            state: &state,
            tenant: &tenant,
            sink: &sink,
        };
        let result = match work {
            Work::Turn(next) => take_turn(&ctx, &mut session, next).await.map(drop),
            Work::Round => run_round(&ctx, &mut session).await.map(drop),
        };
        let last = match result {
            Ok(()) => events::done(&session.id, session.turns, session.is_finished()),
            Err(e) => events::error(&e),
        };
        // The client may be gone already; nothing is left to tell it.
        let _ = sink.send(last).await;
    });
    let events = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (event, receiver))
    });
    sse::response(events)
}
