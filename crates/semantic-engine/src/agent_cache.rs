//! The engine thread's registry of agents and which tier holds each one's KV.
//!
//! *Hot* agents own a slot in the llama.cpp context (idle ones are parked in
//! the scheduler); *warm* ones hold a serialized state in RAM within a byte
//! budget; *disk* ones exist only as a file; *loading* ones are being read by
//! the loader thread; *staged* ones were read for a waiting request and are
//! held for it, outside the warm budget, until it is placed. Every tier keeps
//! the tokens the state holds, so a new prompt can be compared token by token
//! before anything is restored.
//!
//! Apart from the tiers, the cache keeps a ledger of the agents' files (the
//! bytes each one's latest file holds), so the disk tier can be held to its
//! budget: past it, the least recently used agents held *only* on disk are
//! deleted (see [`AgentCache::disk_eviction_candidate`]).

use std::collections::HashMap;
use std::time::SystemTime;

use semantic_domain::{AgentKey, KvState, TokenId};

/// Where an agent's KV lives now.
#[derive(Clone, Debug)]
pub enum Tier {
    Hot,
    Warm {
        state: KvState,
        /// The state came from the agent's file (reported as a disk hit).
        from_disk: bool,
    },
    /// Read from its file for a waiting request and pinned for it: outside
    /// the warm budget and never evicted, so the restore the loader staged
    /// cannot be undone before the engine takes it (that loop was a
    /// livelock). It becomes hot when the request is placed, or goes back to
    /// the warm budget's rule when no request waits for it any more.
    Staged {
        state: KvState,
    },
    Disk {
        bytes: u64,
    },
    Loading,
}

impl Tier {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Hot => "hot",
            Self::Warm { .. } => "warm",
            Self::Staged { .. } => "staged",
            Self::Disk { .. } => "disk",
            Self::Loading => "loading",
        }
    }
}

#[derive(Clone, Debug)]
pub struct AgentEntry {
    pub tokens: Vec<TokenId>,
    pub tier: Tier,
    pub last_use: SystemTime,
    /// Bytes of the agent's state (0 until first measured).
    pub state_bytes: u64,
}

/// A public view of one agent, for listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentInfo {
    pub agent: AgentKey,
    pub tier: &'static str,
    pub tokens: u32,
    pub state_bytes: u64,
    pub last_use: SystemTime,
}

pub struct AgentCache {
    entries: HashMap<AgentKey, AgentEntry>,
    warm_bytes: u64,
    warm_budget: u64,
    /// Bytes of each agent's latest file (KV blob plus tokens; the header's
    /// few hundred bytes are left out).
    files: HashMap<AgentKey, u64>,
    disk_bytes: u64,
    disk_budget: u64,
}

impl Default for AgentCache {
    fn default() -> Self {
        Self::new(0)
    }
}

impl AgentCache {
    /// A cache with `warm_budget` bytes of RAM and no bound on the disk.
    pub fn new(warm_budget: u64) -> Self {
        Self {
            entries: HashMap::new(),
            warm_bytes: 0,
            warm_budget,
            files: HashMap::new(),
            disk_bytes: 0,
            disk_budget: u64::MAX,
        }
    }

    pub fn set_disk_budget(&mut self, bytes: u64) {
        self.disk_budget = bytes;
    }

    pub fn disk_budget(&self) -> u64 {
        self.disk_budget
    }

    /// Bytes of every agent's file, as far as this cache knows (what it
    /// handed to persistence plus what the start-up index found).
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }

    /// `agent`'s file now holds `kv_bytes` of state and `tokens` tokens
    /// (replacing whatever it held).
    pub fn note_file(&mut self, agent: &AgentKey, kv_bytes: u64, tokens: usize) {
        let bytes = file_bytes(kv_bytes, tokens);
        let old = self.files.insert(agent.clone(), bytes).unwrap_or(0);
        self.disk_bytes = self.disk_bytes.saturating_sub(old) + bytes;
    }

    /// `agent` is gone with its file (deleted, quarantined, or found
    /// missing): its entry and its line in the ledger both go.
    pub fn forget(&mut self, agent: &AgentKey) -> Option<AgentEntry> {
        self.forget_file(agent);
        self.remove(agent)
    }

    /// `agent`'s file is gone (deleted, quarantined, or found missing).
    pub fn forget_file(&mut self, agent: &AgentKey) {
        if let Some(old) = self.files.remove(agent) {
            self.disk_bytes = self.disk_bytes.saturating_sub(old);
        }
    }

    /// While the files exceed the disk budget: the least recently used agent
    /// held only in its file and not `protected` (one a waiting request
    /// needs), whose file the caller deletes. Agents also held in RAM or in
    /// the engine keep their files: those tiers are bounded by their own
    /// budgets, so the disk may exceed its budget by at most what they hold.
    pub fn disk_eviction_candidate(
        &self,
        protected: impl Fn(&AgentKey) -> bool,
    ) -> Option<AgentKey> {
        if self.disk_bytes <= self.disk_budget {
            return None;
        }
        self.entries
            .iter()
            .filter(|(a, e)| {
                matches!(e.tier, Tier::Disk { .. }) && self.files.contains_key(*a) && !protected(a)
            })
            .min_by_key(|(_, e)| e.last_use)
            .map(|(a, _)| a.clone())
    }

    pub fn get(&self, agent: &AgentKey) -> Option<&AgentEntry> {
        self.entries.get(agent)
    }

    pub fn warm_bytes(&self) -> u64 {
        self.warm_bytes
    }

    pub fn warm_budget(&self) -> u64 {
        self.warm_budget
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Record (or replace) an agent's entry, keeping the warm byte count exact.
    pub fn set(&mut self, agent: AgentKey, entry: AgentEntry) {
        if let Tier::Warm { state, .. } = &entry.tier {
            self.warm_bytes += state.len() as u64;
        }
        if let Some(old) = self.entries.insert(agent, entry) {
            self.forget_warm(&old);
        }
    }

    pub fn remove(&mut self, agent: &AgentKey) -> Option<AgentEntry> {
        let old = self.entries.remove(agent)?;
        self.forget_warm(&old);
        Some(old)
    }

    fn forget_warm(&mut self, entry: &AgentEntry) {
        if let Tier::Warm { state, .. } = &entry.tier {
            self.warm_bytes = self.warm_bytes.saturating_sub(state.len() as u64);
        }
    }

    /// Put an evicted or unneeded state in the warm tier and keep the tier
    /// within its budget; returns the agents that moved down (to disk with
    /// `has_disk`, else dropped), `agent` included when it went straight
    /// down. A state larger than the whole budget never enters the tier: it
    /// would push out every other warm agent and then itself. Only call when
    /// `entry`'s state (and every warm one) is already persisted.
    pub fn put_warm(
        &mut self,
        agent: AgentKey,
        mut entry: AgentEntry,
        has_disk: bool,
        protect: Option<&AgentKey>,
    ) -> Vec<AgentKey> {
        let bytes = match &entry.tier {
            Tier::Warm { state, .. } | Tier::Staged { state } => state.len() as u64,
            _ => entry.state_bytes,
        };
        entry.state_bytes = bytes;
        if bytes > self.warm_budget {
            self.remove(&agent);
            if has_disk {
                entry.tier = Tier::Disk { bytes };
                self.set(agent.clone(), entry);
            }
            return vec![agent];
        }
        if let Tier::Staged { state } = entry.tier {
            entry.tier = Tier::Warm {
                state,
                from_disk: true,
            };
        }
        self.set(agent, entry);
        self.enforce_warm_budget(has_disk, protect)
    }

    /// Move the least recently used warm agents to the disk tier until the
    /// warm tier fits its budget, never `protect` (the agent the current
    /// admission needs: evicting it would undo the admission's own work).
    /// Only call when every warm state is already persisted (or there is no
    /// disk tier, in which case they are dropped).
    pub fn enforce_warm_budget(
        &mut self,
        has_disk: bool,
        protect: Option<&AgentKey>,
    ) -> Vec<AgentKey> {
        let mut demoted = Vec::new();
        while self.warm_bytes > self.warm_budget {
            let oldest = self
                .entries
                .iter()
                .filter(|(a, e)| matches!(e.tier, Tier::Warm { .. }) && Some(*a) != protect)
                .min_by_key(|(_, e)| e.last_use)
                .map(|(a, _)| a.clone());
            let Some(agent) = oldest else { break };
            let Some(mut entry) = self.remove(&agent) else {
                break;
            };
            if has_disk {
                entry.tier = Tier::Disk {
                    bytes: entry.state_bytes,
                };
                self.set(agent.clone(), entry);
            }
            demoted.push(agent);
        }
        demoted
    }

    /// Agents whose state is staged for a waiting request.
    pub fn staged(&self) -> Vec<AgentKey> {
        self.entries
            .iter()
            .filter(|(_, e)| matches!(e.tier, Tier::Staged { .. }))
            .map(|(a, _)| a.clone())
            .collect()
    }

    pub fn list(&self) -> Vec<AgentInfo> {
        let mut out: Vec<AgentInfo> = self
            .entries
            .iter()
            .map(|(agent, e)| AgentInfo {
                agent: agent.clone(),
                tier: e.tier.name(),
                tokens: e.tokens.len() as u32,
                state_bytes: e.state_bytes,
                last_use: e.last_use,
            })
            .collect();
        out.sort_by_key(|a| std::cmp::Reverse(a.last_use));
        out
    }

    /// The bytes of `agent`'s file, if it has one.
    pub fn file_bytes(&self, agent: &AgentKey) -> Option<u64> {
        self.files.get(agent).copied()
    }

    /// Count of agents per tier name.
    pub fn tier_counts(&self) -> HashMap<&'static str, usize> {
        let mut counts = HashMap::new();
        for e in self.entries.values() {
            *counts.entry(e.tier.name()).or_default() += 1;
        }
        counts
    }
}

/// What an agent file of `kv_bytes` of state and `tokens` tokens costs on
/// disk (the header's JSON is small and left out).
fn file_bytes(kv_bytes: u64, tokens: usize) -> u64 {
    kv_bytes + (tokens * std::mem::size_of::<TokenId>()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(s: &str) -> AgentKey {
        AgentKey::open(semantic_domain::AgentId::parse(s).unwrap())
    }

    fn warm(bytes: usize, age: u64) -> AgentEntry {
        AgentEntry {
            tokens: vec![1, 2, 3],
            tier: Tier::Warm {
                state: KvState::from(vec![0; bytes]),
                from_disk: false,
            },
            last_use: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(age),
            state_bytes: bytes as u64,
        }
    }

    #[test]
    fn warm_budget_demotes_least_recently_used_to_disk() {
        let mut c = AgentCache::new(250);
        c.set(agent("old"), warm(100, 1));
        c.set(agent("mid"), warm(100, 2));
        c.set(agent("new"), warm(100, 3));
        assert_eq!(c.warm_bytes(), 300);
        assert_eq!(c.enforce_warm_budget(true, None), vec![agent("old")]);
        assert_eq!(c.warm_bytes(), 200);
        assert_eq!(c.get(&agent("old")).map(|e| e.tier.name()), Some("disk"));
        // Replacing a warm entry does not double count.
        c.set(agent("mid"), warm(50, 4));
        assert_eq!(c.warm_bytes(), 150);
        c.remove(&agent("new"));
        assert_eq!(c.warm_bytes(), 50);
    }

    #[test]
    fn without_a_disk_tier_demoted_agents_are_forgotten() {
        let mut c = AgentCache::new(0);
        c.set(agent("a"), warm(10, 1));
        assert_eq!(c.enforce_warm_budget(false, None), vec![agent("a")]);
        assert!(c.get(&agent("a")).is_none());
        assert_eq!(c.warm_bytes(), 0);
    }

    #[test]
    fn the_protected_agent_is_never_the_one_demoted() {
        let mut c = AgentCache::new(150);
        c.set(agent("needed"), warm(100, 1));
        c.set(agent("other"), warm(100, 2));
        let demoted = c.enforce_warm_budget(true, Some(&agent("needed")));
        assert_eq!(demoted, vec![agent("other")]);
        assert_eq!(c.get(&agent("needed")).map(|e| e.tier.name()), Some("warm"));
        // Alone over budget, the protected agent stays (briefly over budget).
        c.set(agent("needed"), warm(200, 3));
        assert!(c
            .enforce_warm_budget(true, Some(&agent("needed")))
            .is_empty());
    }

    #[test]
    fn a_state_larger_than_the_budget_skips_the_warm_tier() {
        let mut c = AgentCache::new(150);
        c.set(agent("small"), warm(100, 1));
        let demoted = c.put_warm(agent("big"), warm(200, 2), true, None);
        assert_eq!(demoted, vec![agent("big")]);
        assert_eq!(c.get(&agent("big")).map(|e| e.tier.name()), Some("disk"));
        // The agents already warm were not pushed out for it.
        assert_eq!(c.get(&agent("small")).map(|e| e.tier.name()), Some("warm"));
        assert_eq!(c.warm_bytes(), 100);
    }

    #[test]
    fn staged_states_are_outside_the_warm_budget() {
        let mut c = AgentCache::new(100);
        c.set(agent("warm"), warm(100, 1));
        let mut staged = warm(100, 0);
        if let Tier::Warm { state, .. } = staged.tier {
            staged.tier = Tier::Staged { state };
        }
        c.set(agent("staged"), staged.clone());
        assert_eq!(c.warm_bytes(), 100);
        assert!(c.enforce_warm_budget(true, None).is_empty());
        assert_eq!(c.staged(), vec![agent("staged")]);
        // Unstaged, it obeys the budget like any warm state.
        let demoted = c.put_warm(agent("staged"), staged, true, None);
        assert_eq!(demoted, vec![agent("staged")]);
        assert!(c.staged().is_empty());
    }

    fn disk_only(age: u64) -> AgentEntry {
        AgentEntry {
            tokens: vec![1, 2, 3],
            tier: Tier::Disk { bytes: 100 },
            last_use: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(age),
            state_bytes: 100,
        }
    }

    #[test]
    fn disk_budget_picks_the_least_recently_used_agent_held_only_on_disk() {
        let mut c = AgentCache::new(1000);
        c.set_disk_budget(250);
        for (name, age) in [("old", 1), ("mid", 2), ("new", 3)] {
            c.set(agent(name), disk_only(age));
            c.note_file(&agent(name), 100, 3);
        }
        // An older agent still warm keeps its file: only disk-only ones go.
        c.set(agent("warm"), warm(100, 0));
        c.note_file(&agent("warm"), 100, 3);
        assert_eq!(c.disk_bytes(), 4 * 112);
        assert_eq!(c.disk_eviction_candidate(|_| false), Some(agent("old")));
        // A protected agent (a request waits for it) is skipped.
        let waited = agent("old");
        assert_eq!(
            c.disk_eviction_candidate(|a| *a == waited),
            Some(agent("mid"))
        );
        c.forget(&agent("old"));
        c.forget(&agent("mid"));
        assert_eq!(c.disk_bytes(), 224);
        assert_eq!(c.disk_eviction_candidate(|_| false), None, "within budget");
    }

    #[test]
    fn a_newer_file_replaces_the_old_one_in_the_ledger() {
        let mut c = AgentCache::new(0);
        c.note_file(&agent("a"), 1000, 10);
        c.note_file(&agent("a"), 2000, 20);
        assert_eq!(c.disk_bytes(), 2080);
        assert_eq!(c.file_bytes(&agent("a")), Some(2080));
        // Moving between tiers (remove + set) keeps the file.
        c.set(agent("a"), disk_only(1));
        c.remove(&agent("a"));
        assert_eq!(c.disk_bytes(), 2080);
        c.forget_file(&agent("a"));
        assert_eq!(c.disk_bytes(), 0);
    }

    #[test]
    fn over_budget_with_only_hot_and_warm_files_deletes_nothing() {
        let mut c = AgentCache::new(1000);
        c.set_disk_budget(10);
        c.set(agent("warm"), warm(100, 0));
        c.note_file(&agent("warm"), 100, 3);
        assert_eq!(c.disk_eviction_candidate(|_| false), None);
    }
}
