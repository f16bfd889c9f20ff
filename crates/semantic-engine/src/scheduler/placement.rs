//! Admission: where a waiting request's KV comes from.
//!
//! In order of preference: the agent's own cells still in the engine (hot),
//! its saved state in RAM or read from its file (warm/disk, if restoring is
//! cheaper than recomputing), another sequence's cells with the same prefix
//! (shared), or nothing (cold). Whatever is reused, only the common token
//! prefix is kept: KV past the first differing token is never reused.

use std::time::Instant;

use semantic_domain::tokens::common_prefix_len;
use semantic_domain::{AgentKey, CacheSource, TokenId};

use super::{PrefixSharing, Scheduler};
use crate::agent_cache::Tier;
use crate::backend::{ComputeBackend, SlotId};
use crate::sequence::Sequence;

/// Shorter shared prefixes are not worth a sequence copy.
pub(super) const MIN_SHARED_PREFIX: usize = 32;

/// Reads of one agent's file without it being placed after which the
/// scheduler logs tier thrash (once per agent until it is placed).
pub(super) const THRASH_LOADS: u32 = 3;

/// Tokens of `cached` a new `prompt` may reuse: their common prefix, less
/// the prompt's last token, which is always recomputed to get its logits.
pub(super) fn reusable_prefix(cached: &[TokenId], prompt: &[TokenId]) -> usize {
    common_prefix_len(cached, prompt).min(prompt.len().saturating_sub(1))
}

/// Whether the head of the queue can be placed now.
pub(super) enum Readiness {
    Ready,
    /// Its agent is busy or being loaded; keep it at the head.
    Wait,
}

impl<B: ComputeBackend> Scheduler<B> {
    /// Check the head request's agent: wait while another request of the same
    /// agent runs or its file is being read; start reading it from disk when
    /// that beats recomputing.
    pub(super) fn readiness(&mut self, seq: &Sequence) -> Readiness {
        let Some(agent) = seq.agent.clone() else {
            return Readiness::Ready;
        };
        if self
            .running
            .iter()
            .any(|r| r.agent.as_ref() == Some(&agent))
        {
            return Readiness::Wait;
        }
        let Some(entry) = self.agents.get(&agent) else {
            return Readiness::Ready;
        };
        match entry.tier {
            Tier::Loading => Readiness::Wait,
            Tier::Disk { bytes } => {
                let reuse = reusable_prefix(&entry.tokens, &seq.tokens);
                if self.loader.is_some() && self.costs.load_wins(bytes, reuse) {
                    self.start_load(agent);
                    Readiness::Wait
                } else {
                    Readiness::Ready
                }
            }
            Tier::Hot | Tier::Warm { .. } | Tier::Staged { .. } => Readiness::Ready,
        }
    }

    fn start_load(&mut self, agent: AgentKey) {
        let bytes = self.agents.get(&agent).map_or(0, |e| e.state_bytes);
        if let Some(mut entry) = self.agents.remove(&agent) {
            entry.tier = Tier::Loading;
            self.agents.set(agent.clone(), entry);
        }
        self.stats.disk_loads += 1;
        self.note_load_for_thrash(&agent, bytes);
        if let Some(load) = self.loader.as_mut() {
            load(agent);
        }
    }

    /// Count the reads of an agent's file that did not end in a placement;
    /// past [`THRASH_LOADS`] the tiers are moving it back and forth without
    /// serving it, which the rules in ARCHITECTURE.md forbid: say so once.
    fn note_load_for_thrash(&mut self, agent: &AgentKey, bytes: u64) {
        let loads = self.unplaced_loads.entry(agent.clone()).or_default();
        *loads += 1;
        if *loads == THRASH_LOADS {
            tracing::warn!(
                %agent,
                loads = *loads,
                state_bytes = bytes,
                warm_budget_bytes = self.agents.warm_budget(),
                pool_tokens_free = self.pool.free_blocks() * self.pool.block_tokens(),
                "tier thrash: agent read from disk repeatedly without being served"
            );
        }
    }

    /// A request of `agent` was placed: its loads paid off, and a state
    /// staged for it that placement did not restore is no longer pinned.
    pub(super) fn note_placed(&mut self, agent: &AgentKey) {
        self.unplaced_loads.remove(agent);
        if let Some(entry) = self.agents.get(agent) {
            if matches!(entry.tier, Tier::Staged { .. }) {
                self.unstage(agent);
            }
        }
    }

    /// Give `seq` a slot, its reusable KV and pool capacity for its whole
    /// prompt. False (with nothing changed) when there is no room yet.
    pub(super) fn place(&mut self, seq: &mut Sequence) -> bool {
        let len = seq.tokens.len() as u32;
        if seq.slot.is_some() {
            // Preempted earlier: it kept its slot and sampler.
            return self.pool.ensure_capacity(seq.owner(), len).is_ok();
        }
        if let Some(i) = self.parked_agent_index(seq.agent.as_ref()) {
            return self.take_hot(i, seq);
        }
        if self.free_slots.is_empty() || !self.pool.can_fit(seq.owner(), len) {
            return false;
        }
        let Some(slot) = self.free_slots.pop() else {
            return false;
        };
        self.backend.start_sequence(slot, &seq.sampling);
        seq.slot = Some(slot);
        if !self.restore_saved(seq, slot) {
            self.share_longest_prefix(seq, slot);
        }
        if self.pool.ensure_capacity(seq.owner(), len).is_err() {
            // Cannot happen after `can_fit` (sharing only lowers the need),
            // but never leave a half-placed sequence behind.
            self.release(seq);
            seq.slot = None;
            seq.n_past = 0;
            return false;
        }
        true
    }

    fn parked_agent_index(&self, agent: Option<&AgentKey>) -> Option<usize> {
        let agent = agent?;
        self.parked
            .iter()
            .position(|p| p.agent.as_ref() == Some(agent))
    }

    /// Take over the agent's parked cells, keeping only the common prefix.
    fn take_hot(&mut self, index: usize, seq: &mut Sequence) -> bool {
        let Some(parked) = self.parked.remove(index) else {
            return false;
        };
        let mut keep = reusable_prefix(&parked.tokens, &seq.tokens);
        if !self.covers(parked.slot, keep) {
            keep = 0;
        }
        self.backend.truncate(parked.slot, keep as u32);
        let _ = self.pool.shrink_to(parked.owner, keep as u32);
        if self
            .pool
            .ensure_capacity(parked.owner, seq.tokens.len() as u32)
            .is_err()
        {
            let mut parked = parked;
            parked.tokens.truncate(keep);
            self.parked.push_front(parked);
            return false;
        }
        self.backend.start_sequence(parked.slot, &seq.sampling);
        seq.owner = parked.owner;
        seq.slot = Some(parked.slot);
        self.mark_reused(seq, keep, CacheSource::Hot);
        true
    }

    /// Restore the agent's warm (RAM or freshly read) state when that beats
    /// recomputing; false if nothing was restored.
    fn restore_saved(&mut self, seq: &mut Sequence, slot: SlotId) -> bool {
        let Some(agent) = seq.agent.clone() else {
            return false;
        };
        let Some(entry) = self.agents.get(&agent) else {
            return false;
        };
        let (state, from_disk) = match entry.tier.clone() {
            Tier::Warm { state, from_disk } => (state, from_disk),
            Tier::Staged { state } => (state, true),
            _ => return false,
        };
        let keep = reusable_prefix(&entry.tokens, &seq.tokens);
        if !self.costs.restore_wins(state.len() as u64, keep) {
            return false;
        }
        let started = Instant::now();
        if let Err(err) = self.backend.restore(slot, &state) {
            tracing::warn!(%agent, error = %err, "saved state rejected; recomputing");
            self.agents.remove(&agent);
            return false;
        }
        self.costs
            .note_restore(state.len(), started.elapsed().as_secs_f64());
        if !self.covers(slot, keep) {
            self.backend.truncate(slot, 0);
            return false;
        }
        self.backend.truncate(slot, keep as u32);
        let source = if from_disk {
            CacheSource::Disk
        } else {
            CacheSource::Warm
        };
        self.mark_reused(seq, keep, source);
        self.set_tier(&agent, Tier::Hot);
        true
    }

    /// Share the cells of the parked sequence of the same tenant (see
    /// [`PrefixSharing`]) with the longest common prefix.
    fn share_longest_prefix(&mut self, seq: &mut Sequence, slot: SlotId) {
        let across = self.sharing == PrefixSharing::AcrossTenants;
        let best = self
            .parked
            .iter()
            .filter(|p| across || p.tenant == seq.tenant)
            .map(|p| (reusable_prefix(&p.tokens, &seq.tokens), p.slot, p.owner))
            .max_by_key(|(len, _, _)| *len);
        let Some((keep, src_slot, src_owner)) = best else {
            return;
        };
        if keep < MIN_SHARED_PREFIX || !self.covers(src_slot, keep) {
            return;
        }
        if self
            .pool
            .share_prefix(src_owner, seq.owner(), keep as u32)
            .is_err()
        {
            return;
        }
        self.backend.share_prefix(src_slot, slot, keep as u32);
        self.mark_reused(seq, keep, CacheSource::Shared);
    }

    /// Whether `slot`'s cells can be reused up to `keep`: a sliding-window
    /// cache may have dropped the early cells the continuation needs, and
    /// then nothing of it is reused (see [`ComputeBackend::can_continue_at`]).
    fn covers(&self, slot: SlotId, keep: usize) -> bool {
        let covered = self.backend.can_continue_at(slot, keep as u32);
        if !covered {
            tracing::debug!(
                slot,
                keep,
                "the sliding window dropped cells this reuse needs; recomputing"
            );
        }
        covered
    }

    fn mark_reused(&self, seq: &mut Sequence, keep: usize, source: CacheSource) {
        seq.n_past = keep;
        seq.cached_tokens = keep as u32;
        seq.cache_source = if keep > 0 { source } else { CacheSource::Cold };
    }
}
