//! The stored-responses port: durable conversation state for OpenAI's
//! Responses API, without knowing files, databases or wire shapes.
//!
//! A stored response is one turn of a conversation: what the client sent
//! (its input items), what the model answered (the response object), the
//! turn before it (`previous`) and the agent whose KV holds the chain. The
//! server adapter renders and parses the JSON; the store adapter keeps the
//! records durable and bounded. Every lookup is by tenant: another
//! tenant's response is indistinguishable from a missing one.

use crate::{AgentId, TenantId};

/// Longest response id accepted from a client (ours are 37 characters).
pub const MAX_RESPONSE_ID_LEN: usize = 128;

/// One stored turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    /// `resp_…`, unique.
    pub id: String,
    pub tenant: TenantId,
    /// The turn this one continued (`previous_response_id`), if any.
    pub previous: Option<String>,
    /// The agent whose KV holds this conversation, if it had one.
    pub agent: Option<AgentId>,
    /// Unix seconds when it was created.
    pub created_at: u64,
    /// The response object as it was returned (JSON).
    pub response: String,
    /// This turn's own input items (a JSON array), as listed by the
    /// `input_items` route.
    pub input_items: String,
    /// The reply exactly as the model generated it (tool calls as it wrote
    /// them). The next turn renders this, not the output items, so its
    /// prompt extends the tokens the agent's KV holds.
    pub reply_text: String,
}

impl StoredResponse {
    /// What the record costs in a store's byte budget: its texts.
    pub fn size_bytes(&self) -> u64 {
        let texts = [
            &self.id,
            &self.response,
            &self.input_items,
            &self.reply_text,
        ];
        texts.iter().map(|t| t.len() as u64).sum::<u64>()
            + self.previous.as_ref().map_or(0, |p| p.len() as u64)
    }
}

/// How much a response store may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseBudget {
    /// Total [`StoredResponse::size_bytes`] kept; the oldest responses go
    /// first when a new one would pass it.
    pub max_bytes: u64,
    /// Seconds a response is kept after its creation (OpenAI keeps 30 days).
    pub ttl_secs: u64,
}

/// 1 GiB of conversation text.
pub const DEFAULT_RESPONSE_MAX_BYTES: u64 = 1 << 30;
/// 30 days, as OpenAI.
pub const DEFAULT_RESPONSE_TTL_SECS: u64 = 30 * 24 * 3600;

impl Default for ResponseBudget {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_RESPONSE_MAX_BYTES,
            ttl_secs: DEFAULT_RESPONSE_TTL_SECS,
        }
    }
}

/// What a store holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResponseStoreStats {
    pub responses: u64,
    pub bytes: u64,
}

/// A store that failed to read or write.
#[derive(Debug, thiserror::Error)]
#[error("response store: {0}")]
pub struct ResponseStoreError(pub String);

/// Durable, bounded storage of responses. Calls block on I/O: adapters
/// call them off the async runtime's workers where that matters.
pub trait ResponseStore: Send + Sync {
    /// Store a response durably (on disk when this returns), evicting
    /// expired and, past the budget, the oldest responses.
    fn put(&self, response: &StoredResponse) -> Result<(), ResponseStoreError>;
    /// The response `id` of `tenant`; `None` if it is missing, expired or
    /// another tenant's.
    fn get(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<StoredResponse>, ResponseStoreError>;
    /// Delete the response `id` of `tenant`; false if there was none.
    fn delete(&self, tenant: &TenantId, id: &str) -> Result<bool, ResponseStoreError>;
    fn stats(&self) -> ResponseStoreStats;
}
