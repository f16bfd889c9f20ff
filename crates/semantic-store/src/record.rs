//! What the store keeps for one agent, and when a kept file is usable.

use std::fmt;

use semantic_domain::{AgentKey, KvState, KvType, TokenId};

/// Everything about an agent's KV file except the blob itself. This is what
/// the header holds, so an index can be built without reading any blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRecordMeta {
    /// The agent and the tenant it belongs to.
    pub agent: AgentKey,
    /// Hex fingerprint of the model the KV was computed with.
    pub model_fingerprint: String,
    /// llama.cpp build that produced the blob; its state layout is not a
    /// stable format, so another build must not load it.
    pub engine_build: String,
    pub kv_type: KvType,
    /// The tokens whose KV the blob holds, in order. Kept even when the blob
    /// is unusable, so a miss can re-prefill them instead of losing the agent.
    pub tokens: Vec<TokenId>,
    /// Length of the blob in bytes.
    pub kv_bytes: u64,
    /// When the record was made (the caller's clock), used as "last use".
    pub created_unix_ms: u64,
}

/// An agent's KV state: metadata plus the opaque llama.cpp sequence-state blob.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentRecord {
    pub meta: AgentRecordMeta,
    pub kv_state: KvState,
}

impl fmt::Debug for AgentRecord {
    // The blob may be hundreds of megabytes: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentRecord")
            .field("meta", &self.meta)
            .field("kv_state", &format_args!("<{} bytes>", self.kv_state.len()))
            .finish()
    }
}

/// What a loaded file must match to be usable by the running engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compat {
    pub model_fingerprint: String,
    pub engine_build: String,
    pub kv_type: KvType,
}

impl Compat {
    /// `None` when `meta` is usable, else every difference in one sentence.
    pub fn mismatch(&self, meta: &AgentRecordMeta) -> Option<String> {
        let mut reasons = Vec::new();
        if meta.model_fingerprint != self.model_fingerprint {
            reasons.push(format!(
                "model fingerprint {} differs from the loaded model's {}",
                meta.model_fingerprint, self.model_fingerprint
            ));
        }
        if meta.engine_build != self.engine_build {
            reasons.push(format!(
                "engine build {:?} differs from the running {:?}",
                meta.engine_build, self.engine_build
            ));
        }
        if meta.kv_type != self.kv_type {
            reasons.push(format!(
                "KV type {} differs from the configured {}",
                meta.kv_type, self.kv_type
            ));
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

/// Result of loading an intact file.
#[derive(Debug)]
pub enum LoadOutcome {
    /// Verified and compatible: restore the blob.
    Usable(AgentRecord),
    /// Header readable but the blob is for another model, build or KV type:
    /// the tokens are still returned so the agent can be re-prefilled.
    Mismatch {
        meta: AgentRecordMeta,
        reason: String,
    },
}
