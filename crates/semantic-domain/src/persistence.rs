//! The persistence port: how the engine hands agents' KV state to durable
//! storage and gets it back, without knowing files or formats.
//!
//! The store adapter implements it; the engine calls `save` from its own
//! thread (so `save` must only enqueue) and `load` from a loader thread.

use crate::{AgentKey, KvState, TokenId};

/// One agent's KV state: the opaque engine blob and the tokens it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentSnapshot {
    pub agent: AgentKey,
    /// Tokens whose KV the blob holds, from position 0.
    pub tokens: Vec<TokenId>,
    /// The engine's serialized per-sequence state.
    pub kv_state: KvState,
}

/// What a load found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadResult {
    /// A verified, compatible snapshot.
    Usable(AgentSnapshot),
    /// A file existed but could not be used (corrupt, foreign model, other KV
    /// type or engine build). It was counted and moved aside; `tokens` are
    /// what it held, when its header was readable.
    Unusable {
        reason: String,
        tokens: Option<Vec<TokenId>>,
    },
    /// No file for this agent.
    Missing,
}

/// An agent known to the durable store, from its file header alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAgent {
    pub agent: AgentKey,
    pub tokens: Vec<TokenId>,
    pub kv_bytes: u64,
    /// Milliseconds since the Unix epoch when it was written.
    pub written_unix_ms: u64,
}

/// Durable storage of agents' KV state.
pub trait AgentPersistence: Send + Sync {
    /// Queue a snapshot for writing; must not block on I/O.
    fn save(&self, snapshot: AgentSnapshot);
    /// Read and verify an agent's snapshot (blocking I/O).
    fn load(&self, agent: &AgentKey) -> LoadResult;
    /// Every agent on disk for this model, of every tenant, from headers only.
    fn index(&self) -> Vec<StoredAgent>;
    /// Delete an agent's file; true if one existed.
    fn remove(&self, agent: &AgentKey) -> bool;
    /// Block until every queued save is on disk.
    fn flush(&self);
}
