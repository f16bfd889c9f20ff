//! The scheduler under memory pressure: many agents returning with growing
//! conversations to an engine whose slots, pool and warm tier hold only a
//! few of them, with a disk tier behind (an in-memory fake store) and a
//! loader whose reads land a few steps later, like the real loader thread.
//!
//! What must hold whatever the sizes: every request finishes within a
//! bounded number of steps (the livelock this guards against was a state
//! read from disk for a waiting request being pushed back to disk by the
//! warm budget before the request could take it, forever), the tiers move
//! an agent's KV a bounded number of times per request, the pool invariants
//! hold after every step, and every output equals a cold run's.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use semantic_domain::persistence::{AgentPersistence, AgentSnapshot, LoadResult, StoredAgent};
use semantic_domain::{AgentId, AgentKey, CacheSource, TenantId, Usage};

use super::*;
use crate::agent_cache::Tier;
use crate::cost_model::CostModel;

/// An in-memory disk tier.
#[derive(Default)]
struct FakeStore {
    files: Mutex<HashMap<AgentKey, AgentSnapshot>>,
}

impl AgentPersistence for FakeStore {
    fn save(&self, snapshot: AgentSnapshot) {
        if let Ok(mut files) = self.files.lock() {
            files.insert(snapshot.agent.clone(), snapshot);
        }
    }
    fn load(&self, agent: &AgentKey) -> LoadResult {
        let files = self.files.lock().expect("store lock");
        match files.get(agent) {
            Some(s) => LoadResult::Usable(AgentSnapshot {
                agent: s.agent.clone(),
                tokens: s.tokens.clone(),
                kv_state: s.kv_state.clone(),
            }),
            None => LoadResult::Missing,
        }
    }
    fn index(&self) -> Vec<StoredAgent> {
        Vec::new()
    }
    fn remove(&self, agent: &AgentKey) -> bool {
        self.files
            .lock()
            .map(|mut f| f.remove(agent).is_some())
            .unwrap_or(false)
    }
    fn flush(&self) {}
}

/// A scheduler with tiny slots, pool and warm tier, a fake disk tier and a
/// loader whose reads the test delivers when it chooses.
struct Harness {
    s: Sched,
    store: Arc<FakeStore>,
    pending_loads: Arc<Mutex<VecDeque<AgentKey>>>,
}

/// The fake's states are 4 bytes per cell.
const STATE_BYTES_PER_TOKEN: u64 = 4;

impl Harness {
    fn new(slots: usize, blocks: u32, warm_budget_tokens: u64) -> Self {
        let store = Arc::new(FakeStore::default());
        let pending_loads = Arc::new(Mutex::new(VecDeque::new()));
        let queue = pending_loads.clone();
        let loader: Loader = Box::new(move |agent| {
            if let Ok(mut q) = queue.lock() {
                q.push_back(agent);
            }
        });
        let persistence: Arc<dyn AgentPersistence> = store.clone();
        let s = scheduler(32, slots, blocks)
            .with_tiers(
                warm_budget_tokens * STATE_BYTES_PER_TOKEN,
                Some(persistence),
                Some(loader),
            )
            .with_costs(CostModel::frozen());
        Self {
            s,
            store,
            pending_loads,
        }
    }

    /// Hand the scheduler every read the loader was asked for.
    fn deliver_loads(&mut self) {
        let agents: Vec<AgentKey> = self
            .pending_loads
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default();
        for agent in agents {
            let result = self.store.load(&agent);
            self.s.on_loaded(agent, result, 1e-9);
        }
    }

    /// One step plus every invariant; turns' finished snapshots are taken
    /// at once (no settle wait), so the disk tier is always current.
    fn step(&mut self, turns: &mut [Turn]) {
        self.s.step();
        self.s.persist_dirty(usize::MAX, std::time::Duration::ZERO);
        for t in turns.iter_mut() {
            t.poll();
        }
        self.s.pool().check_invariants().expect("pool invariants");
        check_state(&self.s);
    }
}

/// One agent's turn in flight.
struct Turn {
    agent: usize,
    prompt: Vec<TokenId>,
    max_tokens: u32,
    rx: UnboundedReceiver<GenerationEvent>,
    out: Outcome,
    usage: Option<Usage>,
    submitted_at_step: usize,
}

impl Turn {
    fn poll(&mut self) {
        while let Ok(event) = self.rx.try_recv() {
            if let GenerationEvent::Finished { usage, .. } = &event {
                self.usage = Some(*usage);
            }
            self.out.push(event);
        }
    }
}

fn agent_id(n: usize) -> AgentKey {
    AgentKey::open(AgentId::parse(&format!("agent-{n}")).expect("agent id"))
}

fn submit_turn(
    h: &mut Harness,
    id: u64,
    agent: usize,
    prompt: Vec<TokenId>,
    max_tokens: u32,
) -> Turn {
    let (tx, rx) = unbounded_channel();
    let sampling = SamplingParams::greedy(max_tokens);
    let seq = Sequence::new(RequestId(id), prompt.clone(), sampling, WINDOW, tx)
        .with_agent(TenantId::open(), Some(agent_id(agent)));
    h.s.enqueue(seq);
    Turn {
        agent,
        prompt,
        max_tokens,
        rx,
        out: Outcome::default(),
        usage: None,
        submitted_at_step: 0,
    }
}

/// The output of `prompt` run cold and alone on a roomy scheduler.
fn cold_output(prompt: &[TokenId], max_tokens: u32) -> Vec<TokenId> {
    let mut s = scheduler(64, 1, 4096);
    let (tx, mut rx) = unbounded_channel();
    let seq = Sequence::new(
        RequestId(1),
        prompt.to_vec(),
        SamplingParams::greedy(max_tokens),
        WINDOW,
        tx,
    );
    s.enqueue(seq);
    let mut out = Outcome::default();
    for _ in 0..10_000 {
        if s.is_idle() {
            break;
        }
        s.step();
    }
    while let Ok(event) = rx.try_recv() {
        out.push(event);
    }
    assert!(out.finish.is_some(), "cold run did not finish");
    out.tokens
}

/// New tokens of one user message: distinct per agent and turn.
fn user_message(rng: &mut StdRng, agent: usize, len: usize) -> Vec<TokenId> {
    (0..len)
        .map(|_| 100 + (agent as TokenId) * 7 + rng.gen_range(0..4000))
        .collect()
}

/// Settings of one seeded pressure workload.
struct Pressure {
    slots: usize,
    blocks: u32,
    warm_budget_tokens: u64,
    agents: usize,
    turns: usize,
    /// Largest first message (system prompt) of an agent, in tokens.
    max_first: usize,
}

/// Steps within which any request must finish once submitted: generous
/// for its own prefill and decode and for waiting behind the others in
/// flight, and far below what a livelock would reach.
const STEP_BOUND: usize = 3_000;

/// Run `agents` agents for `turns` turns each, a random one to three
/// requests in flight, each turn extending the agent's previous prompt and
/// reply. Returns the finished turns and the scheduler.
fn run_pressure(seed: u64, p: &Pressure) -> (Vec<Turn>, Harness) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut h = Harness::new(p.slots, p.blocks, p.warm_budget_tokens);
    let window = (p.blocks * BLOCK_TOKENS) as usize;
    // Each agent's conversation so far (prompt + reply of its last turn).
    let mut history: Vec<Vec<TokenId>> = (0..p.agents)
        .map(|a| {
            let first = rng.gen_range(20..=p.max_first);
            let mut t = vec![2000 + a as TokenId];
            t.extend(user_message(&mut rng, a, first));
            t
        })
        .collect();
    let mut turns_left: Vec<usize> = vec![p.turns; p.agents];
    let mut in_flight: Vec<Turn> = Vec::new();
    let mut done: Vec<Turn> = Vec::new();
    let mut next_id = 1;
    let mut step = 0;
    let mut order = (0..p.agents).cycle();
    while turns_left.iter().any(|&n| n > 0) || !in_flight.is_empty() || !h.s.is_idle() {
        let concurrency = rng.gen_range(1..=3);
        while in_flight.len() < concurrency && turns_left.iter().any(|&n| n > 0) {
            let a = order.next().expect("cycle");
            if turns_left[a] == 0 || in_flight.iter().any(|t| t.agent == a) {
                break;
            }
            turns_left[a] -= 1;
            let max_tokens = rng.gen_range(1..=8);
            let mut prompt = history[a].clone();
            if prompt.len() + 16 + max_tokens as usize >= window {
                // The conversation outgrew the window: start over.
                prompt.truncate(1);
            }
            let new = rng.gen_range(1..=16);
            prompt.extend(user_message(&mut rng, a, new));
            let mut turn = submit_turn(&mut h, next_id, a, prompt, max_tokens);
            turn.submitted_at_step = step;
            next_id += 1;
            in_flight.push(turn);
        }
        if rng.gen_bool(0.5) {
            h.deliver_loads();
        }
        h.step(&mut in_flight);
        step += 1;
        let mut i = 0;
        while i < in_flight.len() {
            let t = &in_flight[i];
            assert!(
                step - t.submitted_at_step <= STEP_BOUND,
                "seed {seed}: agent {}'s turn made no progress in {STEP_BOUND} steps \
                 (waiting {}, running {}, tier {:?}, stats {:?})",
                t.agent,
                h.s.waiting(),
                h.s.running(),
                h.s.agents().get(&agent_id(t.agent)).map(|e| e.tier.name()),
                h.s.tier_stats(),
            );
            if t.out.done() {
                let t = in_flight.remove(i);
                assert!(t.out.failed.is_none(), "seed {seed}: {:?}", t.out.failed);
                let mut next = t.prompt.clone();
                next.extend(&t.out.tokens);
                history[t.agent] = next;
                done.push(t);
            } else {
                i += 1;
            }
        }
    }
    (done, h)
}

fn assert_pressure_holds(seed: u64, p: &Pressure) {
    let (done, h) = run_pressure(seed, p);
    assert_eq!(done.len(), p.agents * p.turns);
    for t in &done {
        assert_eq!(
            t.out.tokens,
            cold_output(&t.prompt, t.max_tokens),
            "seed {seed}: agent {} differs from its cold run",
            t.agent
        );
    }
    let stats = h.s.tier_stats();
    let requests = done.len() as u64;
    assert!(
        stats.moves() <= 4 * requests,
        "seed {seed}: {} tier moves for {requests} requests: {stats:?}",
        stats.moves()
    );
    // Returning turns were served from what the tiers kept.
    let reused = done
        .iter()
        .filter(|t| t.usage.is_some_and(|u| u.cached_tokens > 0))
        .count();
    assert!(reused > 0, "seed {seed}: no turn reused a cache: {stats:?}");
    assert!(
        stats.disk_loads > 0,
        "seed {seed}: nothing came back from disk"
    );
    assert!(
        h.s.agents().staged().is_empty(),
        "a staged state outlived its request"
    );
}

#[test]
fn agents_larger_than_the_warm_budget_and_a_pool_of_two_agents_all_finish() {
    // Pool: 8 blocks = 128 cells, two or three agents; the warm tier holds
    // one small agent; the largest agents are bigger than the warm budget.
    let p = Pressure {
        slots: 3,
        blocks: 8,
        warm_budget_tokens: 60,
        agents: 8,
        turns: 4,
        max_first: 70,
    };
    for seed in 1..=6 {
        assert_pressure_holds(seed, &p);
    }
}

#[test]
fn a_pool_barely_larger_than_one_agent_still_serves_every_turn() {
    let p = Pressure {
        slots: 2,
        blocks: 5,
        warm_budget_tokens: 40,
        agents: 5,
        turns: 4,
        max_first: 60,
    };
    for seed in 10..=15 {
        assert_pressure_holds(seed, &p);
    }
}

#[test]
fn without_a_warm_tier_agents_go_from_disk_straight_to_the_engine() {
    let p = Pressure {
        slots: 2,
        blocks: 8,
        warm_budget_tokens: 0,
        agents: 6,
        turns: 3,
        max_first: 70,
    };
    for seed in 20..=24 {
        assert_pressure_holds(seed, &p);
    }
}

/// The livelock itself, step by step: agent 1's state is read back for its
/// waiting request while the warm tier (too small for it) is full, and the
/// read must wait, pinned, until the request takes it.
#[test]
fn a_state_read_for_a_waiting_request_is_pinned_until_it_is_restored() {
    let mut h = Harness::new(1, 8, 10);
    let mut turns = Vec::new();
    // Agent 1 runs a turn, then agent 2 evicts it (to disk: it is larger
    // than the warm budget).
    let first: Vec<TokenId> = (0..50).map(|i| 300 + i).collect();
    turns.push(submit_turn(&mut h, 1, 1, first.clone(), 4));
    for _ in 0..100 {
        h.step(&mut turns);
    }
    let other: Vec<TokenId> = (0..50).map(|i| 900 + i).collect();
    turns.push(submit_turn(&mut h, 2, 2, other, 4));
    for _ in 0..100 {
        h.step(&mut turns);
    }
    assert!(turns.iter().all(|t| t.out.done()));
    let tier = |h: &Harness, a| h.s.agents().get(&agent_id(a)).map(|e| e.tier.name());
    assert_eq!(tier(&h, 1), Some("disk"));
    // Agent 1 returns: its file is requested, and the read stays staged
    // through steps in which the warm tier overflows.
    let mut again = first.clone();
    again.extend(&turns[0].out.tokens);
    again.extend([77, 78, 79]);
    turns.push(submit_turn(&mut h, 3, 1, again.clone(), 4));
    h.step(&mut turns);
    assert_eq!(tier(&h, 1), Some("loading"));
    h.deliver_loads();
    assert_eq!(tier(&h, 1), Some("staged"));
    for _ in 0..100 {
        h.step(&mut turns);
    }
    let returning = &turns[2];
    assert!(
        returning.out.finish.is_some(),
        "the returning turn never finished"
    );
    let usage = returning.usage.expect("usage");
    assert_eq!(usage.cache_source, CacheSource::Disk);
    assert_eq!(usage.cached_tokens as usize, first.len() + 4 - 1);
    assert_eq!(returning.out.tokens, cold_output(&again, 4));
    assert_eq!(h.s.tier_stats().disk_loads, 1, "{:?}", h.s.tier_stats());
    assert!(!matches!(
        h.s.agents().get(&agent_id(1)).map(|e| &e.tier),
        Some(Tier::Staged { .. })
    ));
}

/// A read whose request went away is not pinned forever.
#[test]
fn a_staged_state_whose_request_was_cancelled_is_unpinned() {
    let mut h = Harness::new(1, 8, 1000);
    let mut turns = Vec::new();
    let first: Vec<TokenId> = (0..50).map(|i| 300 + i).collect();
    turns.push(submit_turn(&mut h, 1, 1, first.clone(), 4));
    for _ in 0..100 {
        h.step(&mut turns);
    }
    assert!(h.s.evict_agent(&agent_id(1), EvictTarget::Disk));
    let mut again = first.clone();
    again.extend([77, 78]);
    let turn = submit_turn(&mut h, 2, 1, again, 4);
    h.step(&mut turns);
    assert_eq!(
        h.s.agents().get(&agent_id(1)).map(|e| e.tier.name()),
        Some("loading")
    );
    drop(turn); // the caller goes away while the file is read
    h.step(&mut turns);
    h.deliver_loads();
    assert!(h.s.agents().staged().is_empty());
    assert_eq!(
        h.s.agents().get(&agent_id(1)).map(|e| e.tier.name()),
        Some("warm")
    );
}

/// The stuck-engine test hook: admission finds no room and says so.
#[test]
fn a_stalled_admission_counts_no_room_and_admits_nothing() {
    let mut s = scheduler(32, 2, 8).stall_admission(true);
    let mut clients = vec![submit(&mut s, &spec(1, 10, 4))];
    for _ in 0..5 {
        let report = step(&mut s, &mut clients);
        assert_eq!(report.admitted, 0);
    }
    assert_eq!(s.waiting(), 1);
    assert_eq!(s.tier_stats().admission_no_room, 5);
}
