//! Resolving `previous_response_id`: the stored turns of a conversation,
//! oldest first, as the items the next turn renders before its own input,
//! and the agent whose KV holds them.

use std::sync::Arc;

use axum::http::StatusCode;
use semantic_domain::responses::{
    ResponseStore, ResponseStoreError, StoredResponse, MAX_RESPONSE_ID_LEN,
};
use semantic_domain::{AgentId, TenantId};

use super::items::Entry;
use super::types::Item;
use crate::error::ApiError;

/// More turns than any conversation has; a guard against a corrupt loop.
const MAX_TURNS: usize = 100_000;

/// A conversation so far.
#[derive(Debug, Default)]
pub struct Chain {
    /// Every turn's input items then its reply, oldest turn first.
    pub entries: Vec<Entry>,
    /// The agent of the latest turn.
    pub agent: Option<AgentId>,
}

/// The chain ending at response `id` of `tenant` (blocking reads, run on
/// the blocking pool). A missing, expired or other tenant's response is
/// `previous_response_not_found`, naming the id.
pub async fn resolve(
    store: Arc<dyn ResponseStore>,
    tenant: TenantId,
    id: String,
) -> Result<Chain, ApiError> {
    off_runtime(move || resolve_blocking(store.as_ref(), &tenant, &id)).await
}

/// Run response-store work (blocking reads, an fsynced write) on the
/// blocking pool, off the runtime's workers.
pub async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("response store task failed: {e}")))?
}

/// A store that failed to read or write: our fault, logged, a 500.
pub fn store_failed(e: ResponseStoreError, response: &str) -> ApiError {
    tracing::error!(error = %e, response, "the response store failed");
    ApiError::internal(format!("the response store failed: {e}"))
}

fn resolve_blocking(
    store: &dyn ResponseStore,
    tenant: &TenantId,
    id: &str,
) -> Result<Chain, ApiError> {
    let mut turns: Vec<StoredResponse> = Vec::new();
    let mut next = Some(id.to_owned());
    while let Some(current) = next {
        if turns.len() >= MAX_TURNS {
            return Err(ApiError::invalid_request(format!(
                "the conversation ending at {id} has more than {MAX_TURNS} turns"
            ))
            .with_param("previous_response_id"));
        }
        let found = lookup(store, tenant, &current)?;
        let Some(turn) = found else {
            return Err(not_found(id, &current));
        };
        next = turn.previous.clone();
        turns.push(turn);
    }
    let agent = turns.first().and_then(|t| t.agent.clone());
    let mut entries = Vec::new();
    for turn in turns.iter().rev() {
        let input = parse::<Vec<Item>>(&turn.input_items, &turn.id)?;
        entries.extend(input.into_iter().map(Entry::Item));
        entries.push(Entry::Reply(turn.reply_text.clone()));
    }
    Ok(Chain { entries, agent })
}

fn lookup(
    store: &dyn ResponseStore,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<StoredResponse>, ApiError> {
    if id.is_empty() || id.len() > MAX_RESPONSE_ID_LEN {
        return Ok(None);
    }
    store.get(tenant, id).map_err(|e| store_failed(e, id))
}

fn parse<T: serde::de::DeserializeOwned>(json: &str, id: &str) -> Result<T, ApiError> {
    serde_json::from_str(json)
        .map_err(|e| ApiError::internal(format!("stored response {id} is unreadable: {e}")))
}

/// `previous_response_not_found`: the named response, or an earlier turn of
/// its conversation, is missing.
fn not_found(id: &str, missing: &str) -> ApiError {
    let message = if id == missing {
        format!("Previous response with id '{id}' not found.")
    } else {
        format!(
            "Previous response with id '{id}' cannot be continued: its earlier turn '{missing}' \
             has expired or was deleted."
        )
    };
    ApiError::from_status(StatusCode::BAD_REQUEST, message)
        .with_param("previous_response_id")
        .with_code("previous_response_not_found")
}

/// The stored response `id` of `tenant`, or a 404 in OpenAI's words.
pub async fn stored(
    store: Arc<dyn ResponseStore>,
    tenant: TenantId,
    id: String,
) -> Result<StoredResponse, ApiError> {
    off_runtime(move || {
        lookup(store.as_ref(), &tenant, &id)?.ok_or_else(|| response_not_found(&id))
    })
    .await
}

pub fn response_not_found(id: &str) -> ApiError {
    ApiError::from_status(
        StatusCode::NOT_FOUND,
        format!("Response with id '{id}' not found."),
    )
}
