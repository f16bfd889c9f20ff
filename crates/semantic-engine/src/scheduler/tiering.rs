//! Moving agents' KV between tiers: parking finished sequences (hot),
//! evicting the least recently used to RAM (warm) or to their file (disk),
//! and persisting every completed turn in the background.

use std::time::{Duration, Instant, SystemTime};

use semantic_domain::block_pool::OwnerId;
use semantic_domain::persistence::{AgentSnapshot, LoadResult, StoredAgent};
use semantic_domain::{AgentKey, KvState, TenantId, TokenId};

use super::Scheduler;
use crate::agent_cache::{AgentEntry, Tier};
use crate::backend::{ComputeBackend, SlotId};
use crate::sequence::Sequence;
use crate::stream::{PersistReport, PersistReportSender};
use crate::telemetry;

/// How long a finished turn waits before an idle engine snapshots its KV
/// for the disk. An agent that comes back within it (a tool call, a quick
/// follow-up) finds the engine free instead of busy copying tens of MB of
/// its state, and that copy is skipped: the next turn's supersedes it. The
/// store's writer waits a little more (`semantic_store::writer::SETTLE`).
pub const SNAPSHOT_SETTLE: Duration = Duration::from_millis(400);

/// How long a finished turn waits at most while the engine is busy: the
/// snapshot (~40 ms for 4K tokens of f16 KV here) would otherwise land
/// between the steps of whichever request runs next and delay its first
/// token, so a busy engine defers it, but no longer than this.
pub const SNAPSHOT_MAX_DELAY: Duration = Duration::from_secs(2);

/// A finished sequence whose cells stay in the context.
pub(crate) struct Parked {
    pub slot: SlotId,
    pub owner: OwnerId,
    /// Tokens whose KV the slot holds.
    pub tokens: Vec<TokenId>,
    /// Whose prompt the cells hold: only this tenant's requests may share
    /// them (unless sharing across tenants is configured).
    pub tenant: TenantId,
    pub agent: Option<AgentKey>,
    /// Holds a turn not yet written to disk.
    pub dirty: bool,
    /// When the turn ended: it is snapshotted once it has settled.
    pub finished: Instant,
    /// The finished request waiting to hear when its turn is persisted.
    pub persist_report: Option<PersistReportSender>,
}

/// Where an operator asks an agent's cache to go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictTarget {
    Warm,
    Disk,
}

/// Counts of tier moves since start, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TierStats {
    pub hot_to_warm: u64,
    /// Evicted states larger than the whole warm budget go straight down.
    pub hot_to_disk: u64,
    pub warm_to_disk: u64,
    /// Agents' files read back for a waiting request.
    pub disk_loads: u64,
    pub persisted: u64,
    pub load_failures: u64,
    /// Admission passes that found the head request no slot or no blocks
    /// even after evicting every idle agent it could.
    pub admission_no_room: u64,
    /// Agents' files deleted to keep the disk tier within its budget.
    pub disk_deleted: u64,
}

impl TierStats {
    /// Every move of an agent's KV between tiers.
    pub fn moves(&self) -> u64 {
        self.hot_to_warm + self.hot_to_disk + self.warm_to_disk + self.disk_loads
    }
}

impl<B: ComputeBackend> Scheduler<B> {
    /// Keep a finished sequence's cells: as its agent's hot cache, or (for
    /// an anonymous request) as a shared-prefix source until the room is
    /// needed. Freeing them while others decode would also leave holes that
    /// llama.cpp fills with those sequences' next tokens out of position
    /// order, changing how attention sums them (and so greedy output).
    pub(super) fn park(&mut self, mut seq: Sequence) {
        let Some(slot) = seq.slot else {
            self.pool.release(seq.owner());
            return;
        };
        let tokens = seq.computed_tokens().to_vec();
        let _ = self.pool.shrink_to(seq.owner(), tokens.len() as u32);
        if let Some(agent) = &seq.agent {
            let state_bytes = self.agents.get(agent).map_or(0, |e| e.state_bytes);
            self.agents.set(
                agent.clone(),
                AgentEntry {
                    tokens: tokens.clone(),
                    tier: Tier::Hot,
                    last_use: self.clock.wall(),
                    state_bytes,
                },
            );
        }
        let dirty = seq.agent.is_some() && self.persistence.is_some();
        self.parked.push_back(Parked {
            slot,
            owner: seq.owner(),
            tokens,
            dirty,
            finished: self.clock.now(),
            persist_report: seq.persist_report.take().filter(|_| dirty),
            tenant: seq.tenant.clone(),
            agent: seq.agent,
        });
    }

    /// Free the least recently used parked sequence (anonymous ones first),
    /// demoting an agent's cells to the warm tier. False when none is parked.
    pub(super) fn evict_one(&mut self, keep: Option<&AgentKey>) -> bool {
        let index = self
            .parked
            .iter()
            .position(|p| p.agent.is_none())
            .or_else(|| self.parked.iter().position(|p| p.agent.as_ref() != keep));
        let Some(mut parked) = index.and_then(|i| self.parked.remove(i)) else {
            return false;
        };
        if let Some(agent) = parked.agent.clone() {
            let protect = keep.cloned().or_else(|| self.head_agent());
            self.demote(&mut parked, &agent, protect.as_ref());
        }
        self.free_parked(parked);
        true
    }

    /// Some waiting request is of `agent`.
    pub(super) fn is_waited_for(&self, agent: &AgentKey) -> bool {
        self.waiting.iter().any(|s| s.agent.as_ref() == Some(agent))
    }

    /// The agent of the request at the head of the queue: what the current
    /// admission needs, so no eviction may choose its state.
    pub(super) fn head_agent(&self) -> Option<AgentKey> {
        self.waiting.front().and_then(|s| s.agent.clone())
    }

    /// Free every anonymous parked sequence (the engine is idle).
    pub(super) fn free_anonymous(&mut self) {
        let (anonymous, agents) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|p| p.agent.is_none());
        self.parked = agents;
        for p in anonymous {
            self.free_parked(p);
        }
    }

    fn free_parked(&mut self, parked: Parked) {
        self.backend.end_sequence(parked.slot);
        self.free_slots.push(parked.slot);
        self.pool.release(parked.owner);
    }

    /// Snapshot a hot agent into the warm tier (persisting it if needed),
    /// keeping the warm tier within its budget without touching `protect`.
    fn demote(&mut self, parked: &mut Parked, agent: &AgentKey, protect: Option<&AgentKey>) {
        let state = match self.backend.snapshot(parked.slot) {
            Ok(state) => state,
            Err(err) => {
                tracing::warn!(%agent, error = %err, "cannot snapshot evicted agent");
                self.agents.remove(agent);
                return;
            }
        };
        let state = KvState::from(state);
        if parked.dirty {
            // The warm tier and the writer share the bytes.
            let started = Instant::now();
            self.save(agent, &parked.tokens, state.clone());
            report_persisted(parked.persist_report.take(), started, state.len());
        }
        let entry = AgentEntry {
            tokens: parked.tokens.clone(),
            state_bytes: state.len() as u64,
            tier: Tier::Warm {
                state,
                from_disk: false,
            },
            last_use: self
                .agents
                .get(agent)
                .map_or_else(|| self.clock.wall(), |e| e.last_use),
        };
        let has_disk = self.persistence.is_some();
        let moved = self
            .agents
            .put_warm(agent.clone(), entry, has_disk, protect);
        self.count_moved_down(Some(agent), &moved);
    }

    /// Put a state no request is waiting for any more under the warm
    /// budget's rule.
    pub(super) fn unstage(&mut self, agent: &AgentKey) {
        let Some(entry) = self.agents.remove(agent) else {
            return;
        };
        let protect = self.head_agent();
        let has_disk = self.persistence.is_some();
        let moved = self
            .agents
            .put_warm(agent.clone(), entry, has_disk, protect.as_ref());
        self.count_moved_down(None, &moved);
    }

    /// Unpin the staged states of agents no waiting request needs.
    pub(super) fn unstage_unneeded(&mut self) {
        for agent in self.agents.staged() {
            if !self.is_waited_for(&agent) {
                self.unstage(&agent);
            }
        }
    }

    /// Count what `put_warm` moved: `from_hot` (the agent just evicted from
    /// the engine) entered the warm tier unless it went straight down; the
    /// others went from warm to disk (or were dropped without a disk tier).
    fn count_moved_down(&mut self, from_hot: Option<&AgentKey>, moved: &[AgentKey]) {
        let to = if self.persistence.is_some() {
            "disk"
        } else {
            "dropped"
        };
        let mut from_warm = moved.len();
        if let Some(agent) = from_hot {
            if moved.contains(agent) {
                from_warm -= 1;
                self.stats.hot_to_disk += 1;
                telemetry::evicted("hot", to, 1);
            } else {
                self.stats.hot_to_warm += 1;
                telemetry::evicted("hot", "warm", 1);
            }
        }
        self.stats.warm_to_disk += from_warm as u64;
        telemetry::evicted("warm", to, from_warm);
        if !moved.is_empty() {
            // Agents now held only on disk may be what the budget needs gone.
            self.enforce_disk_budget();
        }
    }

    /// Hand a turn's state to persistence (shared, never copied: tens of MB
    /// copied here would sit on the engine thread, in front of whichever
    /// request comes next).
    fn save(&mut self, agent: &AgentKey, tokens: &[TokenId], state: KvState) {
        if let Some(persistence) = &self.persistence {
            self.agents
                .note_file(agent, state.len() as u64, tokens.len());
            persistence.save(AgentSnapshot {
                agent: agent.clone(),
                tokens: tokens.to_vec(),
                kv_state: state,
            });
            self.stats.persisted += 1;
            self.enforce_disk_budget();
        }
    }

    /// Delete the least recently used agents held only on disk until the
    /// files fit the disk budget. Never one a waiting request needs; agents
    /// in RAM or in the engine keep their files (their tiers have their own
    /// bounds). The agent is forgotten: its next request is a cold one.
    pub(super) fn enforce_disk_budget(&mut self) {
        let Some(persistence) = self.persistence.clone() else {
            return;
        };
        let mut deleted = 0;
        while let Some(agent) = self
            .agents
            .disk_eviction_candidate(|a| self.is_waited_for(a))
        {
            self.agents.forget(&agent);
            self.unplaced_loads.remove(&agent);
            persistence.remove(&agent);
            deleted += 1;
        }
        if deleted > 0 {
            tracing::debug!(
                deleted,
                disk_bytes = self.agents.disk_bytes(),
                budget = self.agents.disk_budget(),
                "disk budget: deleted the least recently used agents' files"
            );
            self.stats.disk_deleted += deleted;
            telemetry::evicted("disk", "deleted", deleted as usize);
        }
    }

    /// Write up to `max` parked agents' unsaved turns (oldest first) that
    /// ended at least `min_age` ago. Runs between steps so the snapshot
    /// never delays a batch by more than one agent's copy; the file write
    /// itself happens on the writer thread.
    pub(super) fn persist_dirty(&mut self, max: usize, min_age: Duration) {
        let mut done = 0;
        let now = self.clock.now();
        for i in 0..self.parked.len() {
            if done == max {
                return;
            }
            let p = &self.parked[i];
            if p.dirty && p.agent.is_some() && now.saturating_duration_since(p.finished) >= min_age
            {
                self.persist_parked(i);
                done += 1;
            }
        }
    }

    /// Some parked agent holds a settled turn not yet handed to persistence.
    pub fn has_unsaved(&self) -> bool {
        self.unsaved_settles_in().is_some_and(|d| d.is_zero())
    }

    /// How long until the next unsaved turn settles (zero: one has; None:
    /// none is unsaved), so an idle engine knows how long it may sleep.
    pub fn unsaved_settles_in(&self) -> Option<Duration> {
        let now = self.clock.now();
        self.parked
            .iter()
            .filter(|p| p.dirty)
            .map(|p| SNAPSHOT_SETTLE.saturating_sub(now.saturating_duration_since(p.finished)))
            .min()
    }

    /// Snapshot parked agent `i`'s unsaved turn and hand it to the writer.
    fn persist_parked(&mut self, i: usize) {
        let Some(agent) = self.parked[i].agent.clone() else {
            return;
        };
        let started = Instant::now();
        match self.backend.snapshot(self.parked[i].slot) {
            Ok(state) => {
                let bytes = state.len();
                let tokens = std::mem::take(&mut self.parked[i].tokens);
                self.save(&agent, &tokens, state.into());
                self.parked[i].tokens = tokens;
                let report = self.parked[i].persist_report.take();
                report_persisted(report, started, bytes);
                if let Some(mut entry) = self.agents.remove(&agent) {
                    entry.state_bytes = bytes as u64;
                    self.agents.set(agent.clone(), entry);
                }
            }
            Err(err) => tracing::warn!(%agent, error = %err, "cannot snapshot agent"),
        }
        self.parked[i].dirty = false;
    }

    /// The loader thread finished reading an agent's file.
    pub fn on_loaded(&mut self, agent: AgentKey, result: LoadResult, secs: f64) {
        let loading = self.agents.get(&agent).map(|e| &e.tier);
        if !matches!(loading, Some(Tier::Loading)) {
            // Deleted (or otherwise settled) while its file was read: the
            // read is stale, and must not resurrect the agent.
            return;
        }
        match result {
            LoadResult::Usable(snapshot) => {
                self.costs
                    .note_disk_read(snapshot.kv_state.len() as u64, secs);
                let last_use = self
                    .agents
                    .get(&agent)
                    .map_or_else(|| self.clock.wall(), |e| e.last_use);
                self.agents.set(
                    agent.clone(),
                    AgentEntry {
                        state_bytes: snapshot.kv_state.len() as u64,
                        tokens: snapshot.tokens,
                        tier: Tier::Staged {
                            state: snapshot.kv_state,
                        },
                        last_use,
                    },
                );
                // Staged for the request that asked for it; if that one went
                // away meanwhile, the state is just another warm one.
                if !self.is_waited_for(&agent) {
                    self.unstage(&agent);
                }
            }
            LoadResult::Unusable { reason, .. } => {
                tracing::warn!(%agent, %reason, "agent file unusable; prefilling instead");
                self.stats.load_failures += 1;
                self.agents.forget(&agent);
            }
            LoadResult::Missing => {
                self.agents.forget(&agent);
            }
        }
    }

    /// Register agents found on disk at start-up (their files last written
    /// is their last use), then hold the disk to its budget: a restart with
    /// a smaller budget deletes the oldest files.
    pub fn seed_disk_index(&mut self, stored: Vec<StoredAgent>) {
        for s in stored {
            let last_use =
                SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(s.written_unix_ms);
            self.agents.note_file(&s.agent, s.kv_bytes, s.tokens.len());
            self.agents.set(
                s.agent,
                AgentEntry {
                    tokens: s.tokens,
                    tier: Tier::Disk { bytes: s.kv_bytes },
                    last_use,
                    state_bytes: s.kv_bytes,
                },
            );
        }
        self.enforce_disk_budget();
    }

    pub(super) fn set_tier(&mut self, agent: &AgentKey, tier: Tier) {
        if let Some(mut entry) = self.agents.remove(agent) {
            entry.tier = tier;
            entry.last_use = self.clock.wall();
            self.agents.set(agent.clone(), entry);
        }
    }

    /// Move an idle agent's cache down to `target`. False if the agent is
    /// unknown or busy.
    pub fn evict_agent(&mut self, agent: &AgentKey, target: EvictTarget) -> bool {
        if self.running.iter().any(|r| r.agent.as_ref() == Some(agent)) {
            return false;
        }
        if let Some(i) = self.parked_index(agent) {
            if let Some(mut parked) = self.parked.remove(i) {
                let protect = self.head_agent();
                self.demote(&mut parked, agent, protect.as_ref());
                self.free_parked(parked);
            }
        }
        if target == EvictTarget::Disk && self.persistence.is_some() {
            if let Some(entry) = self.agents.get(agent) {
                if let Tier::Warm { .. } | Tier::Staged { .. } = entry.tier {
                    let bytes = entry.state_bytes;
                    self.set_tier(agent, Tier::Disk { bytes });
                    self.stats.warm_to_disk += 1;
                    telemetry::evicted("warm", "disk", 1);
                    self.enforce_disk_budget();
                }
            }
        }
        self.agents.get(agent).is_some()
    }

    /// Forget an idle agent's cache in memory and (unless `keep_disk`) on disk.
    pub fn delete_agent(&mut self, agent: &AgentKey, keep_disk: bool) -> bool {
        if self.running.iter().any(|r| r.agent.as_ref() == Some(agent)) {
            return false;
        }
        if keep_disk {
            self.persist_agent(agent);
        }
        if let Some(i) = self.parked_index(agent) {
            if let Some(parked) = self.parked.remove(i) {
                self.free_parked(parked);
            }
        }
        self.unplaced_loads.remove(agent);
        let known = self.agents.remove(agent).is_some();
        if keep_disk {
            if let Some(persistence) = &self.persistence {
                persistence.flush();
                let stored = persistence
                    .index()
                    .into_iter()
                    .filter(|s| &s.agent == agent)
                    .collect();
                self.seed_disk_index(stored);
            }
            return known;
        }
        self.agents.forget_file(agent);
        let on_disk = self.persistence.as_ref().is_some_and(|p| p.remove(agent));
        known || on_disk
    }

    fn persist_agent(&mut self, agent: &AgentKey) {
        if let Some(i) = self.parked_index(agent).filter(|&i| self.parked[i].dirty) {
            self.persist_parked(i);
        }
    }

    fn parked_index(&self, agent: &AgentKey) -> Option<usize> {
        self.parked
            .iter()
            .position(|p| p.agent.as_ref() == Some(agent))
    }

    /// Persist every unsaved turn and wait for the writes (shutdown).
    pub fn persist_all(&mut self) {
        self.persist_dirty(usize::MAX, Duration::ZERO);
        if let Some(persistence) = &self.persistence {
            persistence.flush();
        }
    }
}

/// Tell the request that produced a turn when its KV went to persistence:
/// from the start of the snapshot to the hand-off to the writer thread.
fn report_persisted(to: Option<PersistReportSender>, started: Instant, bytes: usize) {
    if let Some(to) = to {
        let _ = to.send(PersistReport {
            started,
            duration: started.elapsed(),
            bytes: bytes as u64,
        });
    }
}
