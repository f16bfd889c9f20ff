//! The engine thread's registry of agents and which tier holds each one's KV.
//!
//! *Hot* agents own a slot in the llama.cpp context (idle ones are parked in
//! the scheduler); *warm* ones hold a serialized state in RAM within a byte
//! budget; *disk* ones exist only as a file; *loading* ones are being read by
//! the loader thread. Every tier keeps the tokens the state holds, so a new
//! prompt can be compared token by token before anything is restored.

use std::collections::HashMap;
use std::time::SystemTime;

use semantic_domain::{AgentId, KvState, TokenId};

/// Where an agent's KV lives now.
#[derive(Clone, Debug)]
pub enum Tier {
    Hot,
    Warm {
        state: KvState,
        /// The state came from the agent's file (reported as a disk hit).
        from_disk: bool,
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
    pub agent: AgentId,
    pub tier: &'static str,
    pub tokens: u32,
    pub state_bytes: u64,
    pub last_use: SystemTime,
}

#[derive(Default)]
pub struct AgentCache {
    entries: HashMap<AgentId, AgentEntry>,
    warm_bytes: u64,
    warm_budget: u64,
}

impl AgentCache {
    pub fn new(warm_budget: u64) -> Self {
        Self {
            warm_budget,
            ..Self::default()
        }
    }

    pub fn get(&self, agent: &AgentId) -> Option<&AgentEntry> {
        self.entries.get(agent)
    }

    pub fn warm_bytes(&self) -> u64 {
        self.warm_bytes
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Record (or replace) an agent's entry, keeping the warm byte count exact.
    pub fn set(&mut self, agent: AgentId, entry: AgentEntry) {
        if let Tier::Warm { state, .. } = &entry.tier {
            self.warm_bytes += state.len() as u64;
        }
        if let Some(old) = self.entries.insert(agent, entry) {
            self.forget_warm(&old);
        }
    }

    pub fn remove(&mut self, agent: &AgentId) -> Option<AgentEntry> {
        let old = self.entries.remove(agent)?;
        self.forget_warm(&old);
        Some(old)
    }

    fn forget_warm(&mut self, entry: &AgentEntry) {
        if let Tier::Warm { state, .. } = &entry.tier {
            self.warm_bytes = self.warm_bytes.saturating_sub(state.len() as u64);
        }
    }

    /// Move the least recently used warm agents to the disk tier until the
    /// warm tier fits its budget. Only call when every warm state is already
    /// persisted (or there is no disk tier, in which case they are dropped).
    pub fn enforce_warm_budget(&mut self, has_disk: bool) -> Vec<AgentId> {
        let mut demoted = Vec::new();
        while self.warm_bytes > self.warm_budget {
            let oldest = self
                .entries
                .iter()
                .filter(|(_, e)| matches!(e.tier, Tier::Warm { .. }))
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

    /// Count of agents per tier name.
    pub fn tier_counts(&self) -> HashMap<&'static str, usize> {
        let mut counts = HashMap::new();
        for e in self.entries.values() {
            *counts.entry(e.tier.name()).or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(s: &str) -> AgentId {
        AgentId::parse(s).unwrap()
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
        assert_eq!(c.enforce_warm_budget(true), vec![agent("old")]);
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
        assert_eq!(c.enforce_warm_budget(false), vec![agent("a")]);
        assert!(c.get(&agent("a")).is_none());
        assert_eq!(c.warm_bytes(), 0);
    }
}
