//! Scheduler unit tests on a deterministic fake backend.
//!
//! [`FakeBackend`] checks the KV invariants llama.cpp relies on (no position
//! written twice, positions contiguous from 0, nothing beyond the pool's
//! capacity) and samples a token that depends only on the sequence's own KV
//! contents, like a real model; so a sequence's output must not depend on
//! what it was batched with, and the tests compare against solo runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use semantic_domain::{GenerationEvent, RequestId, SamplingParams, TokenId};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::*;
use crate::backend::BackendError;
use semantic_domain::block_pool::OwnerId;

/// The fake's end-of-generation token; sampled only when configured.
const EOG: TokenId = 0;
/// Sampled tokens are in `1..VOCAB`.
const VOCAB: u64 = 100;
const BLOCK_TOKENS: u32 = 16;
/// Default per-sequence window: larger than any pool the tests use, so the
/// pool (not the window) is what limits growth unless a test says otherwise.
const WINDOW: usize = 1 << 16;

// ---------------------------------------------------------------------------
// Fake backend
// ---------------------------------------------------------------------------

/// Per-slot sampler state. Seeded non-greedy samplers are a stream (like
/// llama.cpp's `dist` sampler): each draw advances it.
struct FakeSampler {
    seed: Option<u64>,
    draws: u64,
    /// A grammar: the fake's "dead end" comes after this many samples.
    dead_end_after: Option<u64>,
    samples: u64,
}

#[derive(Default)]
struct FakeBackend {
    slots: usize,
    /// Most cells all slots may hold together (the llama.cpp context).
    capacity: usize,
    kv: HashMap<SlotId, BTreeMap<u32, TokenId>>,
    samplers: HashMap<SlotId, FakeSampler>,
    /// Every batch `decode` was given, failed ones included.
    batches: Vec<Vec<BatchToken>>,
    /// The tag (token at position 0) of each entry of `batches`.
    tags: Vec<Vec<TokenId>>,
    /// Sample EOG when a sequence with this tag samples at this KV length.
    eog_at: HashMap<TokenId, u32>,
    fail_next_decode: bool,
    /// Times position 0 of a tag was fed: 1, plus one per recompute.
    prefill_starts: HashMap<TokenId, u32>,
    /// Most cells one tag ever held.
    max_cells: HashMap<TokenId, usize>,
    /// Slots truncated since they last started: a parked agent's slot that
    /// its next turn resumes (truncate, then start) keeps its cells.
    truncated: BTreeSet<SlotId>,
    /// Act as a sliding-window cache that dropped every parked sequence's
    /// early cells: no position but 0 can be continued from.
    window_dropped_cells: bool,
}

impl FakeBackend {
    fn new(slots: usize, capacity: usize) -> Self {
        Self {
            slots,
            capacity,
            ..Self::default()
        }
    }

    fn total_cells(&self) -> usize {
        self.kv.values().map(BTreeMap::len).sum()
    }

    fn tag_of(&self, slot: SlotId) -> Option<TokenId> {
        self.kv.get(&slot).and_then(|kv| kv.get(&0)).copied()
    }

    /// Positions each tag had in the last batch.
    fn last_batch_by_tag(&self) -> BTreeMap<TokenId, Vec<u32>> {
        let mut out: BTreeMap<TokenId, Vec<u32>> = BTreeMap::new();
        if let (Some(batch), Some(tags)) = (self.batches.last(), self.tags.last()) {
            for (entry, &tag) in batch.iter().zip(tags) {
                out.entry(tag).or_default().push(entry.pos);
            }
        }
        out
    }

    fn place(&mut self, t: &BatchToken) -> TokenId {
        assert!(
            (0..self.slots as SlotId).contains(&t.slot),
            "bad slot {t:?}"
        );
        assert!(
            self.samplers.contains_key(&t.slot),
            "decode on unstarted slot {t:?}"
        );
        let kv = self.kv.entry(t.slot).or_default();
        assert!(!kv.contains_key(&t.pos), "position already occupied: {t:?}");
        assert!(
            t.pos == 0 || kv.contains_key(&(t.pos - 1)),
            "fed before pos-1: {t:?}"
        );
        assert_eq!(
            kv.len(),
            t.pos as usize,
            "positions not contiguous from 0: {t:?}"
        );
        kv.insert(t.pos, t.token);
        let tag = kv[&0];
        let cells = kv.len();
        if t.pos == 0 {
            *self.prefill_starts.entry(tag).or_default() += 1;
        }
        let max = self.max_cells.entry(tag).or_default();
        *max = (*max).max(cells);
        tag
    }
}

/// Samples a fake grammar-constrained sequence gets before its dead end.
const GRAMMAR_DEAD_END: u64 = 3;

fn fnv(h: u64, x: u64) -> u64 {
    (h ^ x).wrapping_mul(0x100_0000_01b3)
}

impl ComputeBackend for FakeBackend {
    fn decode(&mut self, batch: &[BatchToken]) -> Result<(), BackendError> {
        assert!(!batch.is_empty(), "empty batch decoded");
        self.batches.push(batch.to_vec());
        if std::mem::take(&mut self.fail_next_decode) {
            let tags = batch.iter().map(|t| self.tag_of(t.slot).unwrap_or(t.token));
            let tags = tags.collect();
            self.tags.push(tags);
            return Err(BackendError::Decode("injected failure".into()));
        }
        let tags = batch.iter().map(|t| self.place(t)).collect();
        self.tags.push(tags);
        let cells = self.total_cells();
        assert!(
            cells <= self.capacity,
            "{cells} cells exceed the context ({})",
            self.capacity
        );
        Ok(())
    }

    fn start_sequence(&mut self, slot: SlotId, sampling: &SamplingParams) {
        let resumed = self.truncated.remove(&slot);
        if !resumed {
            assert_eq!(
                self.kv_tokens(slot),
                0,
                "slot {slot} started with stale cells"
            );
        }
        let seed = (!sampling.is_greedy()).then(|| sampling.seed.unwrap_or(0));
        let sampler = FakeSampler {
            seed,
            draws: 0,
            dead_end_after: sampling.grammar.as_ref().map(|_| GRAMMAR_DEAD_END),
            samples: 0,
        };
        let old = self.samplers.insert(slot, sampler);
        assert!(
            resumed || old.is_none(),
            "slot {slot} started twice without end_sequence"
        );
    }

    fn sample(&mut self, slot: SlotId, index: usize) -> Result<TokenId, BackendError> {
        let entry = self.batches.last().and_then(|b| b.get(index)).copied();
        let entry = entry.expect("sample index outside the last batch");
        assert_eq!(entry.slot, slot, "sampled another slot's entry");
        assert!(entry.logits, "sampled an entry without logits: {entry:?}");
        let kv = &self.kv[&slot];
        let mut h = 0xcbf2_9ce4_8422_2325;
        for &t in kv.range(..=entry.pos).map(|(_, t)| t) {
            h = fnv(h, t as u64);
        }
        if self.eog_at.get(&kv[&0]) == Some(&(entry.pos + 1)) {
            return Ok(EOG);
        }
        let sampler = self.samplers.get_mut(&slot).expect("sampler");
        sampler.samples += 1;
        if sampler.dead_end_after.is_some_and(|n| sampler.samples > n) {
            return Err(BackendError::Sample("the grammar allows no token".into()));
        }
        if let Some(seed) = sampler.seed {
            h = fnv(fnv(h, seed), sampler.draws);
            sampler.draws += 1;
        }
        Ok(1 + (h % (VOCAB - 1)) as TokenId)
    }

    fn end_sequence(&mut self, slot: SlotId) {
        self.kv.remove(&slot);
        self.samplers.remove(&slot);
        self.truncated.remove(&slot);
    }

    fn clear_cells(&mut self, slot: SlotId) {
        self.kv.remove(&slot);
    }

    fn truncate(&mut self, slot: SlotId, keep: u32) {
        self.truncated.insert(slot);
        if let Some(kv) = self.kv.get_mut(&slot) {
            kv.retain(|&pos, _| pos < keep);
        }
    }

    fn share_prefix(&mut self, src: SlotId, dst: SlotId, tokens: u32) {
        let cells: BTreeMap<u32, TokenId> = self.kv.get(&src).map_or_else(BTreeMap::new, |kv| {
            kv.range(..tokens).map(|(&p, &t)| (p, t)).collect()
        });
        self.kv.insert(dst, cells);
    }

    fn snapshot(&mut self, slot: SlotId) -> Result<Vec<u8>, BackendError> {
        let kv = self.kv.get(&slot).cloned().unwrap_or_default();
        Ok(kv.values().flat_map(|t| t.to_le_bytes()).collect())
    }

    fn restore(&mut self, slot: SlotId, state: &[u8]) -> Result<(), BackendError> {
        let cells = state
            .chunks_exact(4)
            .enumerate()
            .map(|(p, b)| (p as u32, TokenId::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect();
        self.kv.insert(slot, cells);
        Ok(())
    }

    fn kv_tokens(&self, slot: SlotId) -> u32 {
        self.kv.get(&slot).map_or(0, |kv| kv.len() as u32)
    }

    fn can_continue_at(&self, _slot: SlotId, keep: u32) -> bool {
        keep == 0 || !self.window_dropped_cells
    }

    fn is_end_of_generation(&self, token: TokenId) -> bool {
        token == EOG
    }

    fn token_bytes(&self, token: TokenId) -> Vec<u8> {
        format!("<{token}>").into_bytes()
    }
}

fn token(slot: SlotId, pos: u32) -> BatchToken {
    BatchToken {
        token: 7,
        pos,
        slot,
        logits: false,
    }
}

fn started_fake() -> FakeBackend {
    let mut fake = FakeBackend::new(2, 64);
    fake.start_sequence(0, &SamplingParams::greedy(1));
    fake
}

#[test]
#[should_panic(expected = "position already occupied")]
fn fake_rejects_a_position_written_twice() {
    let mut fake = started_fake();
    let _ = fake.decode(&[token(0, 0), token(0, 1)]);
    let _ = fake.decode(&[token(0, 1)]);
}

#[test]
#[should_panic(expected = "fed before pos-1")]
fn fake_rejects_a_gap() {
    let _ = started_fake().decode(&[token(0, 0), token(0, 2)]);
}

#[test]
#[should_panic(expected = "exceed the context")]
fn fake_rejects_more_cells_than_the_context() {
    let batch: Vec<BatchToken> = (0..65).map(|p| token(0, p)).collect();
    let _ = started_fake().decode(&batch);
}

// ---------------------------------------------------------------------------
// Requests and their event streams
// ---------------------------------------------------------------------------

/// Everything a request received, in order.
#[derive(Clone, Debug, Default, PartialEq)]
struct Outcome {
    tokens: Vec<TokenId>,
    text: String,
    finish: Option<FinishReason>,
    completion_tokens: Option<u32>,
    failed: Option<String>,
}

impl Outcome {
    fn done(&self) -> bool {
        self.finish.is_some() || self.failed.is_some()
    }

    fn push(&mut self, event: GenerationEvent) {
        assert!(!self.done(), "event after the terminal one: {event:?}");
        match event {
            GenerationEvent::Token { id, text } => {
                self.tokens.push(id);
                self.text += &text;
            }
            GenerationEvent::Text { text } => self.text += &text,
            GenerationEvent::Finished { reason, usage, .. } => {
                assert_eq!(usage.completion_tokens as usize, self.tokens.len());
                self.finish = Some(reason);
                self.completion_tokens = Some(usage.completion_tokens);
            }
            GenerationEvent::Failed { message } => self.failed = Some(message),
        }
    }
}

#[derive(Clone, Debug)]
struct Spec {
    id: u64,
    len: usize,
    sampling: SamplingParams,
    window: usize,
    /// Sample EOG after this many generated tokens.
    eog_after: Option<u32>,
}

fn spec(id: u64, len: usize, max_tokens: u32) -> Spec {
    Spec {
        id,
        len,
        sampling: SamplingParams::greedy(max_tokens),
        window: WINDOW,
        eog_after: None,
    }
}

fn tag(id: u64) -> TokenId {
    1000 + id as TokenId
}

fn prompt(id: u64, len: usize) -> Vec<TokenId> {
    let t = tag(id);
    (0..len as TokenId)
        .map(|i| {
            if i == 0 {
                t
            } else {
                100 + (t * 31 + i * 7) % 5000
            }
        })
        .collect()
}

struct Client {
    spec: Spec,
    rx: Option<UnboundedReceiver<GenerationEvent>>,
    out: Outcome,
}

impl Client {
    fn tag(&self) -> TokenId {
        tag(self.spec.id)
    }

    fn poll(&mut self) {
        if let Some(rx) = &mut self.rx {
            while let Ok(event) = rx.try_recv() {
                self.out.push(event);
            }
        }
    }

    /// Drop the receiver: the caller went away.
    fn cancel(&mut self) {
        self.rx = None;
    }

    fn cancelled(&self) -> bool {
        self.rx.is_none()
    }
}

type Sched = Scheduler<FakeBackend>;

fn scheduler(budget: usize, max_sequences: usize, blocks: u32) -> Sched {
    let pool = BlockPool::new(blocks, BLOCK_TOKENS).expect("pool");
    let backend = FakeBackend::new(max_sequences, (blocks * BLOCK_TOKENS) as usize);
    let limits = SchedulerLimits {
        step_token_budget: budget,
        max_sequences,
    };
    Scheduler::new(backend, limits, pool)
}

/// Count dequeues through the hook the engine uses for its queue depth.
fn counting_dequeues(s: Sched) -> (Sched, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let s = s.on_dequeue(Box::new(move || {
        seen.fetch_add(1, Ordering::SeqCst);
    }));
    (s, count)
}

fn submit(s: &mut Sched, spec: &Spec) -> Client {
    let (tx, rx) = unbounded_channel();
    if let Some(n) = spec.eog_after {
        s.backend_mut()
            .eog_at
            .insert(tag(spec.id), spec.len as u32 + n);
    }
    let p = prompt(spec.id, spec.len);
    let seq = Sequence::new(
        RequestId(spec.id),
        p,
        spec.sampling.clone(),
        spec.window,
        tx,
    );
    s.enqueue(seq);
    Client {
        spec: spec.clone(),
        rx: Some(rx),
        out: Outcome::default(),
    }
}

/// Submit `len` tokens of conversation 7 for `tenant` (as `agent`, if
/// named) and step until the scheduler is idle: the request's usage and
/// the tokens it sampled. Agents' cells stay parked when idle (anonymous
/// ones are freed), so agents are what later requests can reuse.
fn run_alone(
    s: &mut Sched,
    id: u64,
    (tenant, agent): (semantic_domain::TenantId, Option<&str>),
    len: usize,
) -> (semantic_domain::Usage, Vec<TokenId>) {
    use semantic_domain::{AgentId, AgentKey};
    let spec = spec(id, len, 4);
    let (tx, mut rx) = unbounded_channel();
    let agent = agent.map(|a| AgentKey::new(tenant.clone(), AgentId::parse(a).expect("id")));
    let seq = Sequence::new(
        RequestId(id),
        prompt(7, len),
        spec.sampling,
        spec.window,
        tx,
    )
    .with_agent(tenant, agent);
    s.enqueue(seq);
    for _ in 0..1_000 {
        if s.is_idle() {
            break;
        }
        s.step();
    }
    let mut tokens = Vec::new();
    while let Ok(event) = rx.try_recv() {
        match event {
            GenerationEvent::Token { id, .. } => tokens.push(id),
            GenerationEvent::Finished { usage, .. } => return (usage, tokens),
            _ => {}
        }
    }
    panic!("request {id} did not finish");
}

/// The same request run alone on a roomy scheduler.
fn solo(spec: &Spec) -> Outcome {
    let mut s = scheduler(64, 1, 4096);
    let mut clients = vec![submit(&mut s, spec)];
    run_until_idle(&mut s, &mut clients, 100_000);
    clients.remove(0).out
}

fn assert_matches_solo(clients: &[Client]) {
    for c in clients.iter().filter(|c| !c.cancelled()) {
        assert_eq!(
            c.out,
            solo(&c.spec),
            "request {} differs from its solo run",
            c.spec.id
        );
    }
}

fn slot_of(s: &Sched, id: u64) -> Option<SlotId> {
    s.running
        .iter()
        .find(|q| q.id == RequestId(id))
        .and_then(|q| q.slot)
}

fn running_ids(s: &Sched) -> Vec<u64> {
    s.running.iter().map(|q| q.id.0).collect()
}

// ---------------------------------------------------------------------------
// Driving and invariants
// ---------------------------------------------------------------------------

/// One step, then every invariant the scheduler must keep.
fn step(s: &mut Sched, clients: &mut [Client]) -> StepReport {
    let before = running_ids(s);
    let batches = s.backend().batches.len();
    let report = s.step();
    for c in clients.iter_mut() {
        c.poll();
    }
    assert!(
        report.batch_tokens <= s.limits.step_token_budget,
        "{report:?}"
    );
    assert_eq!(
        report.batch_tokens,
        report.decode_tokens + report.prefill_tokens
    );
    let decoded = s.backend().batches.len() - batches;
    assert_eq!(decoded, usize::from(report.batch_tokens > 0), "{report:?}");
    s.pool().check_invariants().expect("pool invariants");
    check_state(s);
    check_victims_were_youngest(s, &before);
    report
}

/// Slots, cells and blocks agree between the scheduler, pool and backend.
fn check_state(s: &Sched) {
    let mut slots: Vec<SlotId> = s.free_slots.clone();
    let mut owners = BTreeSet::new();
    for q in &s.running {
        let slot = q.slot.expect("running sequence without a slot");
        slots.push(slot);
        owners.insert(q.owner());
        assert_eq!(
            s.backend().kv_tokens(slot) as usize,
            q.n_past,
            "cells != n_past"
        );
        assert!(s.pool().owner_tokens_capacity(q.owner()) as usize >= q.n_past);
    }
    for p in &s.parked {
        slots.push(p.slot);
        owners.insert(p.owner);
    }
    for q in &s.waiting {
        // A preempted sequence keeps its slot (and sampler) but no cells or blocks.
        if let Some(slot) = q.slot {
            assert!(
                q.scheduled.is_some(),
                "a never-admitted waiting sequence holds slot {slot}"
            );
            assert_eq!(
                s.backend().kv_tokens(slot),
                0,
                "waiting sequence holds cells"
            );
            slots.push(slot);
        }
        assert_eq!(
            s.pool().owner_blocks(q.owner()),
            0,
            "waiting sequence holds blocks"
        );
    }
    slots.sort_unstable();
    let all: Vec<SlotId> = (0..s.limits.max_sequences as SlotId).collect();
    assert_eq!(
        slots, all,
        "slots are not free/running/parked/preempted exactly once"
    );
    for owner in s.pool().owners() {
        assert!(
            owners.contains(&owner),
            "{owner:?} holds blocks but is not live"
        );
    }
    assert!(s.kv_tokens_held() as usize <= s.backend().capacity);
}

/// A preempted sequence is always the youngest: nothing admitted after it
/// may still be running.
fn check_victims_were_youngest(s: &Sched, before: &[u64]) {
    let waiting: BTreeSet<u64> = s.waiting.iter().map(|q| q.id.0).collect();
    let Some(first) = before.iter().position(|id| waiting.contains(id)) else {
        return;
    };
    for id in running_ids(s) {
        let older = before[..first].contains(&id);
        assert!(
            older,
            "request {id} still runs though older {} was preempted",
            before[first]
        );
    }
}

fn run_until_idle(s: &mut Sched, clients: &mut [Client], max_steps: usize) -> usize {
    let mut steps = 0;
    while !s.is_idle() {
        assert!(steps < max_steps, "not idle after {max_steps} steps");
        step(s, clients);
        steps += 1;
    }
    assert_released(s);
    for c in clients.iter().filter(|c| !c.cancelled()) {
        assert!(c.out.done(), "request {} never finished", c.spec.id);
    }
    steps
}

/// Step until `done` holds, at most `max_steps` times.
fn run_until(
    s: &mut Sched,
    clients: &mut [Client],
    max_steps: usize,
    done: impl Fn(&Sched, &[Client]) -> bool,
) {
    for _ in 0..max_steps {
        if done(s, clients) {
            return;
        }
        step(s, clients);
    }
    assert!(
        done(s, clients),
        "condition not reached in {max_steps} steps"
    );
}

fn assert_released(s: &Sched) {
    assert_eq!(s.kv_tokens_held(), 0, "cells leaked");
    assert_eq!(s.backend().total_cells(), 0, "cells leaked");
    assert_eq!(s.pool().used_blocks(), 0, "blocks leaked");
    assert!(s.parked.is_empty(), "parked sequences left");
    assert_eq!(s.free_slots.len(), s.limits.max_sequences);
    s.pool().check_invariants().expect("pool invariants");
}

fn generated(c: &Client) -> usize {
    c.out.tokens.len()
}

// ---------------------------------------------------------------------------
// Continuous batching
// ---------------------------------------------------------------------------

#[test]
fn long_prompt_is_chunked_and_never_starves_decode() {
    let mut s = scheduler(256, 4, 512);
    let mut cs = vec![submit(&mut s, &spec(1, 10, 200))];
    run_until(&mut s, &mut cs, 10, |_, cs| generated(&cs[0]) > 0);
    cs.push(submit(&mut s, &spec(2, 1000, 5)));
    let (a, b) = (cs[0].tag(), cs[1].tag());
    let mut chunks = Vec::new();
    while generated(&cs[1]) == 0 {
        assert!(chunks.len() < 10, "prefill took too many steps");
        let before = generated(&cs[0]);
        step(&mut s, &mut cs);
        let by_tag = s.backend().last_batch_by_tag();
        assert_eq!(
            by_tag[&a].len(),
            1,
            "running sequence must decode every step"
        );
        assert_eq!(generated(&cs[0]), before + 1);
        chunks.push(by_tag[&b].len());
    }
    assert_eq!(chunks, vec![255, 255, 255, 235]);
    run_until_idle(&mut s, &mut cs, 1000);
    assert!(s.backend().batches.iter().all(|b| b.len() <= 256));
    assert_matches_solo(&cs);
}

#[test]
fn request_submitted_while_others_decode_joins_next_step() {
    let mut s = scheduler(64, 4, 512);
    let mut cs = vec![
        submit(&mut s, &spec(1, 12, 100)),
        submit(&mut s, &spec(2, 20, 100)),
    ];
    run_until(&mut s, &mut cs, 10, |_, cs| {
        cs.iter().all(|c| generated(c) >= 3)
    });
    cs.push(submit(&mut s, &spec(3, 30, 10)));
    step(&mut s, &mut cs);
    let by_tag = s.backend().last_batch_by_tag();
    assert_eq!(
        by_tag[&cs[2].tag()].len(),
        30,
        "new request prefilled at once"
    );
    assert_eq!(by_tag[&cs[0].tag()].len(), 1);
    assert_eq!(by_tag[&cs[1].tag()].len(), 1);
    assert_eq!((s.running(), s.waiting()), (3, 0));
    assert!(!cs[0].out.done() && !cs[1].out.done());
    run_until_idle(&mut s, &mut cs, 1000);
    assert_matches_solo(&cs);
}

#[test]
fn one_prefill_chunk_per_step_oldest_first() {
    let budget = 128;
    let mut s = scheduler(budget, 8, 512);
    let mut cs: Vec<Client> = [(1, 300), (2, 200), (3, 100)]
        .iter()
        .map(|&(id, len)| submit(&mut s, &spec(id, len, 4)))
        .collect();
    step(&mut s, &mut cs);
    cs.push(submit(&mut s, &spec(4, 10, 4)));
    let prompt_len: HashMap<TokenId, u32> =
        cs.iter().map(|c| (c.tag(), c.spec.len as u32)).collect();
    run_until_idle(&mut s, &mut cs, 1000);
    let mut order: Vec<TokenId> = Vec::new();
    let mut fed: HashMap<TokenId, u32> = HashMap::new();
    for (batch, tags) in s.backend().batches.iter().zip(&s.backend().tags) {
        let is_prefill = |(t, tag): &(&BatchToken, &TokenId)| t.pos < prompt_len[*tag];
        let chunk: Vec<_> = batch.iter().zip(tags).filter(is_prefill).collect();
        let decodes = batch.len() - chunk.len();
        let tags: BTreeSet<TokenId> = chunk.iter().map(|(_, &tag)| tag).collect();
        assert!(tags.len() <= 1, "two prefill chunks in one step: {tags:?}");
        let Some(&tag) = tags.first() else { continue };
        let done = fed.entry(tag).or_default();
        let want = (prompt_len[&tag] - *done).min((budget - decodes) as u32);
        assert_eq!(
            chunk.len() as u32,
            want,
            "prefill chunk does not fill the step"
        );
        *done += want;
        if order.last() != Some(&tag) {
            order.push(tag);
        }
    }
    let tags: Vec<TokenId> = cs.iter().map(Client::tag).collect();
    assert_eq!(
        order, tags,
        "prompts must be prefilled one at a time, oldest first"
    );
    assert_matches_solo(&cs);
}

#[test]
fn batched_output_equals_solo_output() {
    let mut s = scheduler(64, 8, 512);
    let mut specs = [
        spec(1, 7, 40),
        spec(2, 90, 25),
        spec(3, 333, 31),
        spec(4, 600, 17),
    ];
    specs[1].sampling.temperature = 0.8;
    specs[1].sampling.seed = Some(42);
    let mut cs: Vec<Client> = specs.iter().map(|sp| submit(&mut s, sp)).collect();
    run_until_idle(&mut s, &mut cs, 1000);
    for c in &cs {
        assert_eq!(c.out.finish, Some(FinishReason::MaxTokens));
    }
    assert_matches_solo(&cs);
}

// ---------------------------------------------------------------------------
// Finishing
// ---------------------------------------------------------------------------

fn run_one(spec: &Spec) -> Outcome {
    let mut s = scheduler(32, 2, 64);
    let mut cs = vec![submit(&mut s, spec)];
    run_until_idle(&mut s, &mut cs, 1000);
    cs.remove(0).out
}

fn rendered(tokens: &[TokenId]) -> String {
    tokens.iter().map(|t| format!("<{t}>")).collect()
}

#[test]
fn max_tokens_ends_with_exactly_that_many_tokens() {
    let out = run_one(&spec(1, 20, 7));
    assert_eq!(out.finish, Some(FinishReason::MaxTokens));
    assert_eq!(out.tokens.len(), 7);
    assert_eq!(out.completion_tokens, Some(7));
    assert_eq!(out.text, rendered(&out.tokens));
}

#[test]
fn end_of_generation_ends_the_turn_and_is_not_emitted() {
    let mut sp = spec(1, 10, 50);
    sp.eog_after = Some(5);
    let out = run_one(&sp);
    assert_eq!(out.finish, Some(FinishReason::EndOfTurn));
    assert_eq!(out.tokens.len(), 5);
    assert!(!out.tokens.contains(&EOG));
    assert_eq!(out.text, rendered(&out.tokens));
    assert!(!out.text.contains(&format!("<{EOG}>")));
}

#[test]
fn failed_sample_fails_only_its_sequence() {
    let mut s = scheduler(64, 2, 64);
    let mut doomed = spec(1, 10, 20);
    doomed.sampling.grammar = Some(semantic_domain::Grammar::new("root ::= \"x\""));
    let healthy = spec(2, 10, 20);
    let mut clients = vec![submit(&mut s, &doomed), submit(&mut s, &healthy)];
    run_until_idle(&mut s, &mut clients, 1000);
    let failed = clients[0]
        .out
        .failed
        .as_deref()
        .expect("constrained request failed");
    assert!(failed.contains("grammar"), "{failed}");
    assert_eq!(clients[0].out.tokens.len(), GRAMMAR_DEAD_END as usize);
    assert_eq!(clients[1].out, solo(&healthy));
    // The failed sequence gave its slot back; at most the finished one is parked.
    assert!(s.running.is_empty());
    assert!(s.parked.len() <= 1);
    assert_eq!(s.free_slots.len() + s.parked.len(), s.limits.max_sequences);
    s.pool().check_invariants().expect("pool invariants");
}

#[test]
fn stop_string_spanning_two_tokens_ends_generation() {
    let free = run_one(&spec(1, 10, 20));
    let t = &free.tokens;
    // "{t2}><{t3}": starts inside token 2's text, ends inside token 3's.
    let stop = format!("{}><{}", t[2], t[3]);
    let at = rendered(&t[..2]).len() + 1;
    assert_eq!(
        free.text.find(&stop),
        Some(at),
        "stop string must first occur at token 2"
    );
    let mut sp = spec(1, 10, 20);
    sp.sampling.stop = vec![stop.clone()];
    let out = run_one(&sp);
    assert_eq!(out.finish, Some(FinishReason::StopString(stop)));
    assert_eq!(
        out.tokens,
        t[..4].to_vec(),
        "generation ends on the token completing the match"
    );
    assert_eq!(
        out.text,
        free.text[..at],
        "text up to the stop string, excluded"
    );
}

// ---------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------

#[test]
fn dropped_receiver_frees_slot_cells_and_blocks_next_step() {
    let mut s = scheduler(64, 4, 64);
    let mut cs: Vec<Client> = (1..=3)
        .map(|id| submit(&mut s, &spec(id, 20 + id as usize, 60)))
        .collect();
    run_until(&mut s, &mut cs, 20, |_, cs| {
        cs.iter().all(|c| generated(c) >= 5)
    });
    let slot = slot_of(&s, 2).expect("request 2 runs");
    assert!(s.backend().kv_tokens(slot) > 0);
    cs[1].cancel();
    step(&mut s, &mut cs);
    assert_eq!(s.backend().kv_tokens(slot), 0, "cancelled cells freed");
    assert_eq!(
        s.pool().owner_blocks(OwnerId(2)),
        0,
        "cancelled blocks freed"
    );
    let others = s.pool().owner_blocks(OwnerId(1)) + s.pool().owner_blocks(OwnerId(3));
    assert_eq!(s.pool().used_blocks(), others);
    assert!(s.free_slots.contains(&slot));
    assert_eq!(running_ids(&s), vec![1, 3]);
    let by_tag = s.backend().last_batch_by_tag();
    assert!(!by_tag.contains_key(&cs[1].tag()));
    assert_eq!(
        (by_tag[&cs[0].tag()].len(), by_tag[&cs[2].tag()].len()),
        (1, 1)
    );
    run_until_idle(&mut s, &mut cs, 1000);
    assert_matches_solo(&cs);
}

#[test]
fn cancelled_while_waiting_or_prefilling_is_dropped() {
    let (mut s, dequeued) = counting_dequeues(scheduler(32, 1, 64));
    let mut cs = vec![
        submit(&mut s, &spec(1, 100, 3)),
        submit(&mut s, &spec(2, 10, 3)),
    ];
    step(&mut s, &mut cs);
    assert_eq!((s.running(), s.waiting()), (1, 1));
    cs[0].cancel(); // mid-prefill: 32 of 100 prompt tokens computed
    cs[1].cancel(); // still waiting for the only slot
    step(&mut s, &mut cs);
    assert!(s.is_idle());
    assert_released(&s);
    assert_eq!(
        dequeued.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "each request leaves the queue once"
    );
}

// ---------------------------------------------------------------------------
// KV pool: admission, preemption, parking
// ---------------------------------------------------------------------------

#[test]
fn admission_waits_for_pool_capacity_in_arrival_order() {
    // 8 blocks of 16 tokens.
    let mut s = scheduler(64, 4, 8);
    let mut cs = vec![submit(&mut s, &spec(1, 60, 30))];
    run_until(&mut s, &mut cs, 20, |s, _| {
        s.pool().owner_blocks(OwnerId(1)) >= 5
    });
    cs.push(submit(&mut s, &spec(2, 64, 5))); // needs 4 blocks, 3 free
    cs.push(submit(&mut s, &spec(3, 10, 5))); // would fit, but must not overtake
    let mut steps = 0;
    while !cs[0].out.done() {
        step(&mut s, &mut cs);
        steps += 1;
        assert!(steps < 100);
        assert_eq!(
            (s.running(), s.waiting()),
            (usize::from(!cs[0].out.done()), 2)
        );
        let by_tag = s.backend().last_batch_by_tag();
        assert_eq!(
            by_tag.keys().copied().collect::<Vec<_>>(),
            vec![cs[0].tag()]
        );
    }
    assert!(steps > 1, "the big request must have waited");
    step(&mut s, &mut cs);
    let by_tag = s.backend().last_batch_by_tag();
    assert_eq!(
        by_tag[&cs[1].tag()].len(),
        64,
        "admitted as soon as blocks free up"
    );
    assert!(
        !by_tag.contains_key(&cs[2].tag()),
        "one prefill per step, oldest first"
    );
    assert_eq!(
        s.pool().owner_blocks(OwnerId(1)),
        0,
        "finished request's blocks reclaimed"
    );
    run_until_idle(&mut s, &mut cs, 1000);
    assert_matches_solo(&cs);
}

/// Pool of 7 blocks of 16. Request 1 (30-token prompt) hits its 4th block
/// after request 2 (40-token prompt) took the last free one, so request 2,
/// the youngest, is preempted and later recomputed.
fn preemption_run(second: Spec) -> Vec<Client> {
    let (mut s, dequeued) = counting_dequeues(scheduler(64, 4, 7));
    let mut cs = vec![submit(&mut s, &spec(1, 30, 60)), submit(&mut s, &second)];
    run_until_idle(&mut s, &mut cs, 1000);
    assert_eq!(
        dequeued.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "a re-admitted request is not dequeued twice"
    );
    let starts = &s.backend().prefill_starts;
    assert_eq!(starts[&tag(1)], 1, "the older sequence is never preempted");
    assert_eq!(starts[&tag(2)], 2, "the younger sequence is preempted once");
    cs
}

#[test]
fn youngest_is_preempted_recomputed_and_output_unchanged() {
    let cs = preemption_run(spec(2, 40, 30));
    for c in &cs {
        assert_eq!(c.out.finish, Some(FinishReason::MaxTokens));
    }
    assert_matches_solo(&cs);
}

#[test]
fn preempted_seeded_sequence_keeps_its_random_stream() {
    let mut second = spec(2, 40, 30);
    second.sampling.temperature = 0.7;
    second.sampling.seed = Some(9);
    let cs = preemption_run(second);
    assert_matches_solo(&cs);
}

#[test]
fn youngest_that_cannot_grow_is_not_ended_while_others_run() {
    // Pool of 6 blocks of 16: request 2 (younger) needs its 4th block while
    // request 1 holds 4 and the pool is full. Request 1 will finish and free
    // its blocks, so request 2 must wait (be preempted), not end.
    let mut s = scheduler(64, 4, 6);
    let mut cs = vec![
        submit(&mut s, &spec(1, 30, 50)),
        submit(&mut s, &spec(2, 40, 30)),
    ];
    run_until_idle(&mut s, &mut cs, 1000);
    assert_eq!(
        cs[1].out.finish,
        Some(FinishReason::MaxTokens),
        "{:?}",
        cs[1].out
    );
    assert_matches_solo(&cs);
}

#[test]
fn lone_sequence_that_outgrows_the_pool_ends_context_full() {
    // 4 blocks of 16 = 64 cells; the window would allow more.
    let mut s = scheduler(64, 2, 4);
    let mut sp = spec(1, 30, 1);
    sp.sampling.max_tokens = None;
    let mut cs = vec![submit(&mut s, &sp)];
    run_until_idle(&mut s, &mut cs, 1000);
    assert_eq!(cs[0].out.finish, Some(FinishReason::ContextFull));
    // Every cell was used: positions 0..64, plus the last sampled token.
    assert_eq!(s.backend().max_cells[&tag(1)], 64);
    assert_eq!(generated(&cs[0]), 64 - 30 + 1);
}

#[test]
fn finished_sequence_is_parked_until_its_slot_is_needed() {
    let mut s = scheduler(64, 2, 64);
    let mut cs = vec![
        submit(&mut s, &spec(1, 10, 3)),
        submit(&mut s, &spec(2, 10, 40)),
    ];
    run_until(&mut s, &mut cs, 10, |s, _| slot_of(s, 1).is_some());
    let slot = slot_of(&s, 1).expect("slot");
    run_until(&mut s, &mut cs, 20, |_, cs| cs[0].out.done());
    for _ in 0..3 {
        assert_eq!(
            s.parked.len(),
            1,
            "finished sequence parked while others run"
        );
        assert!(s.backend().kv_tokens(slot) > 0, "parked cells kept");
        assert!(s.pool().owner_blocks(OwnerId(1)) > 0, "parked blocks kept");
        assert!(s.free_slots.is_empty());
        step(&mut s, &mut cs);
    }
    cs.push(submit(&mut s, &spec(3, 10, 5)));
    step(&mut s, &mut cs);
    assert!(
        s.parked.is_empty(),
        "parked sequence reclaimed for the new request"
    );
    assert_eq!(slot_of(&s, 3), Some(slot));
    assert_eq!(s.backend().tag_of(slot), Some(cs[2].tag()));
    assert_eq!(s.pool().owner_blocks(OwnerId(1)), 0);
    run_until_idle(&mut s, &mut cs, 1000);
    assert_matches_solo(&cs);
}

#[test]
fn finished_sequence_is_parked_until_its_blocks_are_needed() {
    // 8 blocks of 16; slots are plenty.
    let mut s = scheduler(64, 4, 8);
    let mut cs = vec![
        submit(&mut s, &spec(1, 40, 3)),
        submit(&mut s, &spec(2, 20, 40)),
    ];
    run_until(&mut s, &mut cs, 20, |_, cs| cs[0].out.done());
    assert_eq!(s.parked.len(), 1);
    assert_eq!(s.pool().owner_blocks(OwnerId(1)), 3);
    assert!(s.pool().free_blocks() < 4);
    cs.push(submit(&mut s, &spec(3, 60, 2))); // needs 4 blocks
    step(&mut s, &mut cs);
    assert!(
        s.parked.is_empty(),
        "parked blocks reclaimed for the new request"
    );
    assert_eq!(s.pool().owner_blocks(OwnerId(1)), 0);
    assert_eq!(running_ids(&s), vec![2, 3]);
    run_until_idle(&mut s, &mut cs, 1000);
    assert_matches_solo(&cs);
}

#[test]
fn everything_is_released_as_soon_as_nothing_runs() {
    let mut s = scheduler(64, 4, 64);
    let mut cs = vec![
        submit(&mut s, &spec(1, 10, 2)),
        submit(&mut s, &spec(2, 12, 6)),
    ];
    run_until(&mut s, &mut cs, 20, |_, cs| cs[0].out.done());
    assert_eq!(s.parked.len(), 1);
    run_until(&mut s, &mut cs, 20, |_, cs| cs[1].out.done());
    // The step that finished the last request released everything.
    assert!(s.is_idle());
    assert_released(&s);
}

#[test]
fn budget_smaller_than_running_sequences_still_completes_everything() {
    let mut s = scheduler(2, 4, 64);
    let mut cs: Vec<Client> = (1..=4)
        .map(|id| submit(&mut s, &spec(id, 3 + id as usize, 6)))
        .collect();
    run_until_idle(&mut s, &mut cs, 1000);
    assert!(s.backend().batches.iter().all(|b| b.len() <= 2));
    assert_matches_solo(&cs);
}

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

#[test]
fn abort_all_fails_every_request_and_releases_everything() {
    let mut s = scheduler(64, 2, 64);
    let mut cs = vec![
        submit(&mut s, &spec(1, 10, 2)),
        submit(&mut s, &spec(2, 10, 40)),
    ];
    run_until(&mut s, &mut cs, 10, |_, cs| cs[0].out.done());
    cs.push(submit(&mut s, &spec(3, 10, 5)));
    cs.push(submit(&mut s, &spec(4, 10, 5)));
    step(&mut s, &mut cs); // request 3 takes the parked slot, 4 waits
    assert_eq!((s.running(), s.waiting()), (2, 1));
    s.abort_all("shutting down");
    for c in cs.iter_mut() {
        c.poll();
    }
    assert_eq!(cs[0].out.finish, Some(FinishReason::MaxTokens));
    for c in &cs[1..] {
        assert_eq!(
            c.out.failed.as_deref(),
            Some("shutting down"),
            "request {}",
            c.spec.id
        );
    }
    assert!(s.is_idle());
    assert_released(&s);
}

#[test]
fn decode_failure_fails_its_batch_and_the_scheduler_recovers() {
    let mut s = scheduler(64, 2, 64);
    let mut cs = vec![
        submit(&mut s, &spec(1, 10, 30)),
        submit(&mut s, &spec(2, 50, 30)),
    ];
    run_until(&mut s, &mut cs, 10, |_, cs| {
        cs.iter().all(|c| generated(c) >= 2)
    });
    cs.push(submit(&mut s, &spec(3, 15, 8))); // waits: no free slot
    s.backend_mut().fail_next_decode = true;
    step(&mut s, &mut cs);
    for c in &cs[..2] {
        let message = c.out.failed.as_deref().expect("failed event");
        assert!(message.contains("injected failure"), "{message}");
        assert_eq!(c.out.finish, None);
    }
    assert!(!cs[2].out.done());
    assert_eq!((s.running(), s.waiting()), (0, 1));
    assert_eq!(s.kv_tokens_held(), 0);
    assert_eq!(s.pool().used_blocks(), 0);
    cs.push(submit(&mut s, &spec(4, 40, 8)));
    run_until_idle(&mut s, &mut cs, 1000);
    assert_matches_solo(&cs[2..]);
}

// ---------------------------------------------------------------------------
// Random workload
// ---------------------------------------------------------------------------

fn random_spec(rng: &mut StdRng, id: u64, window: usize) -> Spec {
    let len = rng.gen_range(1..=200);
    let mut sp = spec(id, len, rng.gen_range(1..=60));
    sp.window = window;
    if rng.gen_bool(0.1) {
        sp.sampling.max_tokens = None; // until the window is full
    }
    if rng.gen_bool(0.3) {
        sp.eog_after = Some(rng.gen_range(1..=40));
    }
    if rng.gen_bool(0.2) {
        sp.sampling.stop = vec![format!("{}>", rng.gen_range(1..VOCAB))];
    }
    sp
}

/// 200 requests with random prompts, limits, cancellations and decode
/// failures on a small pool. Returns the clients once idle, and how many
/// times a sequence was recomputed after a preemption.
fn random_workload(seed: u64) -> (Vec<Client>, u32) {
    let blocks = 40;
    let window = (blocks * BLOCK_TOKENS) as usize;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut s = scheduler(96, 8, blocks);
    let mut cs: Vec<Client> = Vec::new();
    let mut steps = 0;
    while cs.len() < 200 || !s.is_idle() {
        assert!(steps < 50_000, "workload did not finish");
        steps += 1;
        if cs.len() < 200 && rng.gen_bool(0.4) {
            for _ in 0..rng.gen_range(1..=3) {
                let sp = random_spec(&mut rng, cs.len() as u64 + 1, window);
                cs.push(submit(&mut s, &sp));
            }
        }
        if !cs.is_empty() && rng.gen_bool(0.05) {
            let i = rng.gen_range(0..cs.len());
            cs[i].cancel();
        }
        if rng.gen_bool(0.01) {
            s.backend_mut().fail_next_decode = true;
        }
        step(&mut s, &mut cs);
    }
    assert_released(&s);
    for c in cs.iter().filter(|c| !c.cancelled()) {
        assert!(c.out.done(), "request {} never ended", c.spec.id);
    }
    let recomputed = s.backend().prefill_starts.values().map(|n| n - 1).sum();
    (cs, recomputed)
}

/// The streamed text is the tokens' text, cut before a matched stop string.
fn assert_text_consistent(out: &Outcome) {
    let full = rendered(&out.tokens);
    match &out.finish {
        Some(FinishReason::StopString(stop)) => {
            assert!(full.starts_with(&out.text), "{out:?}");
            assert_eq!(full.find(stop.as_str()), Some(out.text.len()), "{out:?}");
        }
        _ => assert_eq!(out.text, full),
    }
}

/// The workload exercised every way a request can end, and preemption.
fn assert_covered(cs: &[Client], recomputed: u32) {
    let ended = |f: fn(&Outcome) -> bool| cs.iter().filter(|c| !c.cancelled() && f(&c.out)).count();
    assert!(recomputed > 0, "no preemption");
    assert!(cs.iter().filter(|c| c.cancelled()).count() > 0);
    assert!(ended(|o| o.failed.is_some()) > 0, "no decode failure");
    assert!(ended(|o| o.finish == Some(FinishReason::MaxTokens)) > 0);
    assert!(ended(|o| o.finish == Some(FinishReason::EndOfTurn)) > 0);
    assert!(ended(|o| matches!(o.finish, Some(FinishReason::StopString(_)))) > 0);
}

/// Finished requests must match their solo run; one that ended with
/// ContextFull may be a prefix of it (see the ignored strict test).
#[test]
fn random_workload_keeps_invariants_and_leaks_nothing() {
    for seed in [1, 2, 3] {
        let (cs, recomputed) = random_workload(seed);
        assert_covered(&cs, recomputed);
        let finished = cs
            .iter()
            .filter(|c| !c.cancelled() && c.out.finish.is_some());
        for c in finished {
            assert_text_consistent(&c.out);
            let alone = solo(&c.spec);
            if c.out.finish == Some(FinishReason::ContextFull) {
                assert!(
                    alone.tokens.starts_with(&c.out.tokens),
                    "request {}",
                    c.spec.id
                );
            } else {
                assert_eq!(c.out, alone, "seed {seed}, request {}", c.spec.id);
            }
        }
    }
}

#[test]
fn random_workload_outputs_equal_solo_outputs() {
    for seed in [1, 2, 3] {
        let (cs, _) = random_workload(seed);
        let finished: Vec<Client> = cs.into_iter().filter(|c| c.out.finish.is_some()).collect();
        assert_matches_solo(&finished);
    }
}

#[path = "scheduler_pressure_tests.rs"]
mod memory_pressure;

/// When finished agents' turns are handed to persistence.
mod persistence_settle {
    use std::sync::{Arc, Mutex};

    use semantic_domain::persistence::{AgentPersistence, AgentSnapshot, LoadResult, StoredAgent};
    use semantic_domain::{AgentId, AgentKey, TenantId};

    use super::*;
    use crate::clock::ManualClock;
    use crate::scheduler::tiering::SNAPSHOT_SETTLE;

    /// Records the agents whose snapshots the scheduler hands over.
    #[derive(Default)]
    struct Recording {
        saved: Mutex<Vec<AgentKey>>,
    }

    impl Recording {
        fn saved(&self) -> Vec<AgentKey> {
            self.saved.lock().map(|s| s.clone()).unwrap_or_default()
        }
    }

    impl AgentPersistence for Recording {
        fn save(&self, snapshot: AgentSnapshot) {
            if let Ok(mut saved) = self.saved.lock() {
                saved.push(snapshot.agent);
            }
        }
        fn load(&self, _agent: &AgentKey) -> LoadResult {
            LoadResult::Missing
        }
        fn index(&self) -> Vec<StoredAgent> {
            Vec::new()
        }
        fn remove(&self, _agent: &AgentKey) -> bool {
            false
        }
        fn flush(&self) {}
    }

    /// A scheduler persisting into a recording, on a clock the test moves.
    fn with_recording() -> (Sched, Arc<Recording>, ManualClock) {
        let recording = Arc::new(Recording::default());
        let persistence: Arc<dyn AgentPersistence> = recording.clone();
        let clock = ManualClock::new();
        let s = scheduler(64, 4, 64)
            .with_tiers(1 << 30, Some(persistence), None)
            .with_clock(Arc::new(clock.clone()));
        (s, recording, clock)
    }

    /// One turn of agent `a`: the first `len` tokens of one conversation's
    /// prompt, 4 generated, run until the engine is idle.
    fn turn(s: &mut Sched, id: u64, len: usize) {
        run_alone(s, id, (TenantId::open(), Some("a")), len);
    }

    #[test]
    fn a_finished_turn_is_snapshotted_only_once_it_has_settled() {
        let (mut s, recording, clock) = with_recording();
        turn(&mut s, 1, 40);
        s.persist_one();
        assert!(recording.saved().is_empty(), "snapshotted before settling");
        assert!(!s.has_unsaved());
        clock.advance(SNAPSHOT_SETTLE - std::time::Duration::from_millis(1));
        s.persist_one();
        assert!(recording.saved().is_empty(), "snapshotted 1 ms early");
        assert_eq!(
            s.unsaved_settles_in(),
            Some(std::time::Duration::from_millis(1))
        );
        clock.advance(std::time::Duration::from_millis(1));
        assert!(s.has_unsaved());
        s.persist_one();
        assert_eq!(
            recording.saved(),
            AgentId::parse("a")
                .ok()
                .map(AgentKey::open)
                .into_iter()
                .collect::<Vec<_>>()
        );
        assert!(!s.has_unsaved());
    }

    #[test]
    fn an_agent_back_before_its_turn_settled_skips_that_snapshot() {
        let (mut s, recording, clock) = with_recording();
        turn(&mut s, 1, 40);
        turn(&mut s, 2, 60);
        assert!(recording.saved().is_empty());
        clock.advance(SNAPSHOT_SETTLE);
        s.persist_one();
        s.persist_one();
        // Only the second turn's state is handed over: it holds the first.
        assert_eq!(recording.saved().len(), 1);
    }
}

/// Cross-sequence prefix sharing is scoped by tenant (see `PrefixSharing`).
mod tenants {
    use super::*;
    use crate::scheduler::PrefixSharing;
    use semantic_domain::{CacheSource, TenantId};

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).expect("tenant")
    }

    fn run(
        s: &mut Sched,
        id: u64,
        who: (TenantId, Option<&str>),
        len: usize,
    ) -> (CacheSource, u32) {
        let (usage, _) = run_alone(s, id, who, len);
        (usage.cache_source, usage.cached_tokens)
    }

    #[test]
    fn a_prefix_is_shared_within_its_tenant_only() {
        let mut s = scheduler(64, 4, 64);
        let a_planner = (tenant("a"), Some("planner"));
        assert_eq!(run(&mut s, 1, a_planner, 100).0, CacheSource::Cold);
        // Tenant b's prompts start with a's 100 tokens: nothing is reused,
        // not even by b's agent of the same name.
        assert_eq!(
            run(&mut s, 2, (tenant("b"), None), 120),
            (CacheSource::Cold, 0)
        );
        let b_planner = (tenant("b"), Some("planner"));
        assert_eq!(run(&mut s, 3, b_planner, 130), (CacheSource::Cold, 0));
        // Another request of tenant a reuses a's cells, not b's longer ones.
        let a_other = (tenant("a"), None);
        assert_eq!(run(&mut s, 4, a_other, 140), (CacheSource::Shared, 100));
    }

    #[test]
    fn sharing_across_tenants_is_an_explicit_opt_in() {
        let mut s = scheduler(64, 4, 64).prefix_sharing(PrefixSharing::AcrossTenants);
        run(&mut s, 1, (tenant("a"), Some("planner")), 100);
        let b = run(&mut s, 2, (tenant("b"), None), 120);
        assert_eq!(b, (CacheSource::Shared, 100));
    }
}

/// An agent whose cells are parked gets its slot back even when every slot
/// is parked: admission once spun forever there, asking for a free slot it
/// would never use (found through the Responses API's branching test).
mod every_slot_parked {
    use super::*;
    use semantic_domain::{CacheSource, TenantId};

    fn as_agent(name: &str) -> (TenantId, Option<&str>) {
        (TenantId::open(), Some(name))
    }

    #[test]
    fn a_parked_agent_returns_when_no_slot_is_free() {
        let mut s = scheduler(64, 2, 64);
        run_alone(&mut s, 1, as_agent("a"), 100);
        // b shares a's cells; now both slots hold parked agents.
        let (usage, _) = run_alone(&mut s, 2, as_agent("b"), 120);
        assert_eq!(usage.cache_source, CacheSource::Shared);
        // a comes back with a conversation that parts from its cells early
        // (a branch), then with one that extends them.
        let (usage, _) = run_alone(&mut s, 3, as_agent("a"), 90);
        assert_eq!(
            (usage.cache_source, usage.cached_tokens),
            (CacheSource::Hot, 89)
        );
        let (usage, _) = run_alone(&mut s, 4, as_agent("b"), 130);
        assert_eq!(usage.cache_source, CacheSource::Hot);
        check_state(&s);
    }
}

/// KV a sliding-window cache no longer holds is recomputed, never reused.
mod sliding_window {
    use super::*;
    use semantic_domain::{CacheSource, TenantId};

    /// One turn of agent `a` on the first `len` tokens of one conversation.
    fn turn(s: &mut Sched, id: u64, len: usize) -> (CacheSource, u32, Vec<TokenId>) {
        let (usage, tokens) = run_alone(s, id, (TenantId::open(), Some("a")), len);
        (usage.cache_source, usage.cached_tokens, tokens)
    }

    #[test]
    fn cells_the_window_dropped_are_recomputed_not_reused() {
        let mut full = scheduler(64, 4, 64);
        turn(&mut full, 1, 100);
        let (source, cached, expected) = turn(&mut full, 2, 140);
        assert_eq!((source, cached), (CacheSource::Hot, 100));

        let mut windowed = scheduler(64, 4, 64);
        windowed.backend_mut().window_dropped_cells = true;
        turn(&mut windowed, 1, 100);
        let (source, cached, tokens) = turn(&mut windowed, 2, 140);
        assert_eq!((source, cached), (CacheSource::Cold, 0));
        assert_eq!(tokens, expected, "a recompute gives the output of a reuse");
        assert_eq!(windowed.backend_mut().prefill_starts[&tag(7)], 2);
    }
}
