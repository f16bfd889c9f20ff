//! Continuous batching.
//!
//! Every step builds one batch: first a decode token for each running
//! sequence, then prefill chunks of admitted sequences, then newly admitted
//! requests, all under a per-step token budget. Long prompts are therefore
//! prefilled in chunks while other sequences keep decoding, and new requests
//! join while others decode. KV memory is accounted in a [`BlockPool`]: a
//! request is admitted only when its prompt fits; when a running sequence
//! cannot grow, the most recently admitted other sequence is preempted (its
//! cells freed, its tokens recomputed later), so the pool can never
//! overflow the llama.cpp context.

mod placement;
mod tiering;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use semantic_domain::block_pool::BlockPool;
use semantic_domain::persistence::AgentPersistence;
use semantic_domain::{AgentKey, FinishReason};

use crate::agent_cache::AgentCache;
use crate::backend::{BatchToken, ComputeBackend, SlotId};
use crate::clock::{Clock, SystemClock};
use crate::cost_model::CostModel;
use crate::sequence::{AfterSample, Sequence};
use placement::Readiness;
pub(crate) use tiering::Parked;
pub use tiering::{EvictTarget, TierStats};

/// Starts reading an agent's file off the engine thread; the result comes
/// back through [`Scheduler::on_loaded`].
pub type Loader = Box<dyn FnMut(AgentKey) + Send>;

/// Scheduling limits.
#[derive(Clone, Copy, Debug)]
pub struct SchedulerLimits {
    pub step_token_budget: usize,
    pub max_sequences: usize,
}

/// Which parked sequences a new request may copy a common prefix from.
///
/// Across tenants, the reused length (`cached_tokens`, and the first-token
/// time) would tell one tenant how many leading tokens of its guess equal
/// another tenant's private context, so sharing stays within a tenant
/// unless the operator opts in (one trusted deployment, one system prompt).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PrefixSharing {
    #[default]
    WithinTenant,
    AcrossTenants,
}

/// What one step did, for metrics and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    pub batch_tokens: usize,
    pub decode_tokens: usize,
    pub prefill_tokens: usize,
    pub sampled: usize,
    /// Requests that left the queue for a slot this step.
    pub admitted: usize,
}

pub struct Scheduler<B: ComputeBackend> {
    backend: B,
    limits: SchedulerLimits,
    pool: BlockPool,
    waiting: VecDeque<Sequence>,
    /// Admitted sequences, in admission order.
    running: Vec<Sequence>,
    free_slots: Vec<SlotId>,
    /// Finished sequences whose cells stay in the context, least recently
    /// used first: agents' hot caches and anonymous prefix sources.
    parked: VecDeque<Parked>,
    agents: AgentCache,
    persistence: Option<Arc<dyn AgentPersistence>>,
    loader: Option<Loader>,
    costs: CostModel,
    stats: TierStats,
    /// Reads of an agent's file since it was last placed (tier thrash).
    unplaced_loads: HashMap<AgentKey, u32>,
    /// Test hook: admission never finds room (the stuck-engine probe test).
    stall_admission: bool,
    sharing: PrefixSharing,
    /// Settle times and agents' last use (a hand-moved clock in tests).
    clock: Arc<dyn Clock>,
    batch: Vec<BatchToken>,
    /// Called the moment a request leaves the queue, before any of its
    /// tokens can reach the caller, so a queue-depth counter is never stale.
    on_dequeue: Option<Box<dyn Fn() + Send>>,
}

impl<B: ComputeBackend> Scheduler<B> {
    pub fn new(backend: B, limits: SchedulerLimits, pool: BlockPool) -> Self {
        let free_slots = (0..limits.max_sequences as SlotId).rev().collect();
        Self {
            backend,
            limits,
            pool,
            waiting: VecDeque::new(),
            running: Vec::new(),
            free_slots,
            parked: VecDeque::new(),
            agents: AgentCache::new(0),
            persistence: None,
            loader: None,
            costs: CostModel::default(),
            stats: TierStats::default(),
            unplaced_loads: HashMap::new(),
            stall_admission: false,
            sharing: PrefixSharing::WithinTenant,
            clock: Arc::new(SystemClock),
            batch: Vec::with_capacity(limits.step_token_budget),
            on_dequeue: None,
        }
    }

    /// Keep agents' caches beyond the context: `warm_budget` bytes of states
    /// in RAM, and every turn persisted through `persistence` (if any), with
    /// files read back by `loader`.
    pub fn with_tiers(
        mut self,
        warm_budget: u64,
        persistence: Option<Arc<dyn AgentPersistence>>,
        loader: Option<Loader>,
    ) -> Self {
        self.agents = AgentCache::new(warm_budget);
        self.persistence = persistence;
        self.loader = loader;
        self
    }

    /// Decide settle times and last use by `clock` (tests move it by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Hold agents' files to `bytes` (see [`AgentCache::disk_eviction_candidate`]).
    pub fn disk_budget(mut self, bytes: u64) -> Self {
        self.agents.set_disk_budget(bytes);
        self
    }

    pub fn agents(&self) -> &AgentCache {
        &self.agents
    }

    pub fn tier_stats(&self) -> &TierStats {
        &self.stats
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    pub fn pool(&self) -> &BlockPool {
        &self.pool
    }

    pub(crate) fn enqueue(&mut self, seq: Sequence) {
        self.waiting.push_back(seq);
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Pool blocks held by running requests: memory that cannot be freed by
    /// evicting idle agents, so the true measure of KV pressure.
    pub fn pinned_blocks(&self) -> u32 {
        self.running
            .iter()
            .map(|seq| self.pool.owner_blocks(seq.owner()))
            .sum()
    }

    /// Decide restore-or-recompute with these rates instead of measured ones.
    #[cfg(test)]
    pub(crate) fn with_costs(mut self, costs: CostModel) -> Self {
        self.costs = costs;
        self
    }

    /// Which parked sequences a request may share a prefix with.
    pub fn prefix_sharing(mut self, sharing: PrefixSharing) -> Self {
        self.sharing = sharing;
        self
    }

    /// Test hook: make every admission find no room, as a livelocked
    /// scheduler would, so the probes' stall detection can be proven.
    pub fn stall_admission(mut self, stall: bool) -> Self {
        self.stall_admission = stall;
        self
    }

    /// Call `hook` each time a request leaves the queue for the first time.
    pub fn on_dequeue(mut self, hook: Box<dyn Fn() + Send>) -> Self {
        self.on_dequeue = Some(hook);
        self
    }

    fn note_dequeued(&mut self, seq: &mut Sequence) {
        if std::mem::take(&mut seq.queued) {
            if let Some(hook) = &self.on_dequeue {
                hook();
            }
        }
    }

    /// Persist one settled unsaved agent (called by the engine loop while idle).
    pub fn persist_one(&mut self) {
        self.persist_dirty(1, tiering::SNAPSHOT_SETTLE);
    }

    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.running.is_empty()
    }

    /// Fail every request, waiting or running (the engine is going away).
    pub fn abort_all(&mut self, message: &str) {
        while let Some(mut seq) = self.waiting.pop_front() {
            self.note_dequeued(&mut seq);
            seq.fail(message.to_owned());
            self.release(&seq);
        }
        while let Some(mut seq) = self.running.pop() {
            seq.fail(message.to_owned());
            self.release(&seq);
        }
        while self.evict_one(None) {}
    }

    /// Run one engine step. Returns what was in the batch.
    pub fn step(&mut self) -> StepReport {
        let started = Instant::now();
        let report = self.run_step();
        let stepped = started.elapsed();
        if self.running.is_empty() {
            self.free_anonymous();
        }
        // While busy, only turns that have waited too long, one per step;
        // the engine loop persists the rest one at a time once idle,
        // checking for new work in between.
        self.persist_dirty(1, tiering::SNAPSHOT_MAX_DELAY);
        // Every test and debug server checks the pool after every step: a
        // leaked or doubly held block fails where it happens (the check is
        // linear in the pool's blocks, and compiled out of release builds).
        #[cfg(debug_assertions)]
        if let Err(broken) = self.pool.check_invariants() {
            panic!("block pool invariant broken after a step: {broken}");
        }
        tracing::trace!(
            decode = report.decode_tokens,
            prefill = report.prefill_tokens,
            step_ms = stepped.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "step"
        );
        report
    }

    fn run_step(&mut self) -> StepReport {
        self.drop_cancelled();
        let admitted = self.admit();
        let mut report = self.plan();
        report.admitted = admitted;
        if self.batch.is_empty() {
            return report;
        }
        let started = Instant::now();
        if let Err(err) = self.backend.decode(&self.batch) {
            self.fail_batch(&err.to_string());
            return report;
        }
        if report.decode_tokens == 0 {
            self.costs
                .note_prefill(report.prefill_tokens, started.elapsed().as_secs_f64());
        }
        report.sampled = self.sample_outputs();
        report
    }

    /// Remove sequences whose caller went away; their cells are freed at once.
    fn drop_cancelled(&mut self) {
        let (gone, kept): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|s| s.caller_gone());
        self.waiting = kept;
        let unstage = gone.iter().any(|s| s.agent.is_some());
        for mut seq in gone {
            self.note_dequeued(&mut seq);
            self.release(&seq);
        }
        if unstage {
            self.unstage_unneeded();
        }
        let mut i = 0;
        while i < self.running.len() {
            if self.running[i].caller_gone() {
                let seq = self.running.remove(i);
                if seq.agent.is_some() {
                    // The agent keeps its KV up to the last token produced.
                    self.park(seq);
                } else {
                    self.release(&seq);
                }
            } else {
                i += 1;
            }
        }
    }

    /// Move waiting requests into free slots while their whole pending
    /// tokens fit in the pool, in arrival order (no overtaking, so a big
    /// prompt is not starved by small ones). Returns how many were admitted.
    ///
    /// Progress: each pass either places the head, evicts one idle parked
    /// sequence (finitely many), or stops until running sequences finish or
    /// the head's file is read; nothing it evicts is what the head needs.
    fn admit(&mut self) -> usize {
        let mut admitted = 0;
        if self.stall_admission {
            if !self.waiting.is_empty() {
                self.note_no_room();
            }
            return 0;
        }
        while let Some(front) = self.waiting.front() {
            let resumes_parked =
                front.agent.is_some() && self.parked.iter().any(|p| p.agent == front.agent);
            if self.free_slots.is_empty() && front.slot.is_none() && !resumes_parked {
                // Free a slot before deciding anything else. (An agent whose
                // cells are parked takes its own slot back: it needs none.)
                let keep = front.agent.clone();
                if !self.evict_one(keep.as_ref()) {
                    self.note_no_room();
                    return admitted;
                }
                continue;
            }
            let Some(mut seq) = self.waiting.pop_front() else {
                return admitted;
            };
            if let Readiness::Wait = self.readiness(&seq) {
                self.waiting.push_front(seq);
                return admitted;
            }
            let placing = Instant::now();
            if self.place(&mut seq) {
                self.note_dequeued(&mut seq);
                if let Some(agent) = seq.agent.clone() {
                    self.note_placed(&agent);
                }
                seq.admitted(placing);
                self.running.push(seq);
                admitted += 1;
                continue;
            }
            let keep = seq.agent.clone();
            self.waiting.push_front(seq);
            if !self.evict_one(keep.as_ref()) {
                self.note_no_room();
                return admitted;
            }
        }
        admitted
    }

    fn note_no_room(&mut self) {
        self.stats.admission_no_room += 1;
        crate::telemetry::admission_no_room();
    }

    /// Fill the batch: decode tokens first, then prefill chunks.
    fn plan(&mut self) -> StepReport {
        self.batch.clear();
        let mut report = StepReport::default();
        let budget = self.limits.step_token_budget;
        let mut i = 0;
        while i < self.running.len() {
            if !self.running[i].is_prefilling() && self.batch.len() < budget {
                if self.reserve_next_cell(i) {
                    self.push_tokens(i, 1);
                    report.decode_tokens += 1;
                } else {
                    continue; // running[i] was removed or preempted; re-examine index i
                }
            }
            i += 1;
        }
        // One prefilling sequence per step, oldest first: finishing one
        // prompt before starting the next gives the lowest mean time to first
        // token, and keeps each sequence's prefill numerics independent of
        // which other prompts arrived with it (llama.cpp's tiled attention
        // groups cells by position in the cache, so packing two prompts in
        // one batch changes rounding and so greedy output).
        let room = budget - self.batch.len();
        if let Some(i) = self.running.iter().position(Sequence::is_prefilling) {
            if room > 0 {
                let n = self.running[i].pending().min(room);
                self.push_tokens(i, n);
                report.prefill_tokens += n;
            }
        }
        report.batch_tokens = self.batch.len();
        report
    }

    /// Make room in the pool for one more cell of running[i]. Preempts the
    /// youngest other sequence if needed; ends running[i] if it is alone.
    /// Returns false when running[i] did not get the cell (and so moved).
    fn reserve_next_cell(&mut self, i: usize) -> bool {
        loop {
            let seq = &self.running[i];
            let need = seq.n_past as u32 + 1;
            if self.pool.ensure_capacity(seq.owner(), need).is_ok() {
                return true;
            }
            if self.evict_one(None) {
                continue;
            }
            let victim = self.running.len() - 1;
            if self.running.len() == 1 {
                let mut seq = self.running.remove(i);
                seq.finish(FinishReason::ContextFull);
                self.release(&seq);
                return false;
            }
            self.preempt(victim);
            if victim == i {
                return false;
            }
        }
    }

    /// Free a sequence's cells and blocks and put it back at the head of the
    /// queue; it keeps its slot and sampler and is recomputed from its tokens
    /// (prompt and output so far) when the pool has room again.
    fn preempt(&mut self, index: usize) {
        let mut seq = self.running.remove(index);
        if let Some(slot) = seq.slot {
            self.backend.clear_cells(slot);
        }
        self.pool.release(seq.owner());
        seq.n_past = 0;
        tracing::debug!(request = %seq.id, tokens = seq.tokens.len(), "preempted");
        self.waiting.push_front(seq);
    }

    fn push_tokens(&mut self, i: usize, n: usize) {
        let seq = &self.running[i];
        let Some(slot) = seq.slot else { return };
        let end = seq.n_past + n;
        for pos in seq.n_past..end {
            self.batch.push(BatchToken {
                token: seq.tokens[pos],
                pos: pos as u32,
                slot,
                logits: pos + 1 == seq.tokens.len(),
            });
        }
    }

    /// After a decode: advance every sequence in the batch and sample those
    /// whose last pending token was computed.
    fn sample_outputs(&mut self) -> usize {
        let mut sampled = 0;
        let mut finished = Vec::new();
        let mut failed = Vec::new();
        for (index, entry) in self.batch.iter().enumerate() {
            let Some(i) = self.running.iter().position(|s| s.slot == Some(entry.slot)) else {
                continue;
            };
            let seq = &mut self.running[i];
            seq.n_past = entry.pos as usize + 1;
            if !entry.logits {
                continue;
            }
            let token = match self.backend.sample(entry.slot, index) {
                Ok(token) => token,
                Err(e) => {
                    failed.push((entry.slot, e.to_string()));
                    continue;
                }
            };
            let eog = self.backend.is_end_of_generation(token);
            let bytes = self.backend.token_bytes(token);
            sampled += 1;
            if let AfterSample::Finished(reason) = seq.accept(token, eog, &bytes) {
                finished.push((entry.slot, reason));
            }
        }
        for (slot, reason) in finished {
            if let Some(i) = self.running.iter().position(|s| s.slot == Some(slot)) {
                let mut seq = self.running.remove(i);
                seq.finish(reason);
                self.park(seq);
            }
        }
        // A sampler that cannot go on (a grammar dead end) fails only its
        // own sequence; the others in the batch carry on.
        for (slot, message) in failed {
            if let Some(i) = self.running.iter().position(|s| s.slot == Some(slot)) {
                let mut seq = self.running.remove(i);
                tracing::warn!(request = %seq.id, error = %message, "sampling failed");
                seq.fail(message);
                self.release(&seq);
            }
        }
        sampled
    }

    fn fail_batch(&mut self, message: &str) {
        tracing::error!(error = message, "engine step failed; failing its sequences");
        let slots: Vec<SlotId> = self.batch.iter().map(|b| b.slot).collect();
        let mut i = 0;
        while i < self.running.len() {
            if self.running[i].slot.is_some_and(|s| slots.contains(&s)) {
                let mut seq = self.running.remove(i);
                seq.fail(format!("inference failed: {message}"));
                self.release(&seq);
            } else {
                i += 1;
            }
        }
    }

    /// Return a sequence's slot, cells and blocks.
    fn release(&mut self, seq: &Sequence) {
        if let Some(slot) = seq.slot {
            self.backend.end_sequence(slot);
            self.free_slots.push(slot);
        }
        self.pool.release(seq.owner());
    }

    /// KV cells still held by any slot (zero when no request is live).
    pub fn kv_tokens_held(&self) -> u32 {
        (0..self.limits.max_sequences as SlotId)
            .map(|s| self.backend.kv_tokens(s))
            .sum()
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
