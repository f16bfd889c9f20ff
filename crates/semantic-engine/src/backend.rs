//! The compute port the scheduler drives.
//!
//! The scheduler decides *what* goes into each step; a backend runs it. The
//! production backend is llama.cpp ([`crate::llama_backend`]); scheduler unit
//! tests use a deterministic fake, and the real-model tests prove the same
//! behaviour on llama.cpp.

use semantic_domain::{SamplingParams, TokenId};

/// A llama.cpp sequence id: the slot a live request occupies in the context.
pub type SlotId = i32;

/// One token of a step's batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchToken {
    pub token: TokenId,
    pub pos: u32,
    pub slot: SlotId,
    /// Whether the next token is sampled from this position's logits.
    pub logits: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("llama_decode failed: {0}")]
    Decode(String),
    #[error("KV state transfer failed: {0}")]
    State(String),
    #[error("sampling failed: {0}")]
    Sample(String),
}

pub trait ComputeBackend {
    /// One forward pass over the whole batch.
    fn decode(&mut self, batch: &[BatchToken]) -> Result<(), BackendError>;
    /// Prepare per-sequence sampling state for a newly admitted slot.
    fn start_sequence(&mut self, slot: SlotId, sampling: &SamplingParams);
    /// Sample the slot's next token from the logits of batch entry `index`.
    /// Fails only for a constrained sequence whose grammar cannot go on.
    fn sample(&mut self, slot: SlotId, index: usize) -> Result<TokenId, BackendError>;
    /// Free the slot's KV cells and sampling state.
    fn end_sequence(&mut self, slot: SlotId);
    /// Free the slot's KV cells but keep its sampling state: the sequence was
    /// preempted and will be recomputed into the same slot, and a seeded
    /// sampler must continue its random stream, not restart it.
    fn clear_cells(&mut self, slot: SlotId);
    /// Drop the slot's cells at positions `keep..` (keep the common prefix).
    fn truncate(&mut self, slot: SlotId, keep: u32);
    /// Make `dst` share `src`'s cells for positions `0..tokens` (no copy:
    /// unified KV cells carry several sequence ids).
    fn share_prefix(&mut self, src: SlotId, dst: SlotId, tokens: u32);
    /// Serialize the slot's KV state.
    fn snapshot(&mut self, slot: SlotId) -> Result<Vec<u8>, BackendError>;
    /// Load a state produced by `snapshot` (of this model, KV type and
    /// engine build) into an empty slot.
    fn restore(&mut self, slot: SlotId, state: &[u8]) -> Result<(), BackendError>;
    /// Whether the slot's cells let its sequence go on at position `keep`:
    /// every cell the token at `keep` attends to is still there. Always so
    /// with full attention; a sliding-window cache may have dropped cells
    /// older than its window, and KV that is gone must be recomputed, never
    /// assumed (see ARCHITECTURE.md, "Sliding-window models").
    fn can_continue_at(&self, _slot: SlotId, _keep: u32) -> bool {
        true
    }
    /// KV cells the slot holds right now (for leak checks).
    fn kv_tokens(&self, slot: SlotId) -> u32;
    /// EOS or an end-of-turn token.
    fn is_end_of_generation(&self, token: TokenId) -> bool;
    /// The bytes a token adds to the output text.
    fn token_bytes(&self, token: TokenId) -> Vec<u8>;
}
