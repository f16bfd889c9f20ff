//! The engine's metrics, recorded through the `metrics` facade where the
//! values change; whoever installs a recorder (the server's Prometheus
//! exporter) sees them, and without one every call is a no-op.
//!
//! Names are listed with their meaning in `docs/observability.md`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use semantic_domain::block_pool::BlockPool;
use semantic_domain::generation::Timings;
use semantic_domain::{CacheSource, Usage};

use crate::agent_cache::AgentCache;

pub const QUEUE_DEPTH: &str = "semantic_request_queue_depth";
pub const RUNNING: &str = "semantic_requests_running";
pub const BATCH_SIZE: &str = "semantic_batch_size";
pub const TOKENS_PER_SECOND: &str = "semantic_tokens_per_second";
pub const POOL_BLOCKS: &str = "semantic_kv_pool_blocks";
pub const POOL_UTILIZATION: &str = "semantic_kv_pool_utilization_ratio";
pub const AGENTS: &str = "semantic_agents";
pub const EVICTIONS: &str = "semantic_cache_evictions_total";
pub const TIME_TO_FIRST_TOKEN: &str = "semantic_time_to_first_token_seconds";
pub const INTER_TOKEN_LATENCY: &str = "semantic_inter_token_latency_seconds";
pub const PROMPT_TOKENS: &str = "semantic_prompt_tokens_total";
pub const PROMPT_TOKENS_CACHED: &str = "semantic_prompt_tokens_cached_total";
pub const GENERATION_TOKENS: &str = "semantic_generation_tokens_total";
pub const ADMISSION_NO_ROOM: &str = "semantic_admission_no_room_total";
pub const DISK_TIER_BYTES: &str = "semantic_disk_tier_bytes";
pub const DISK_TIER_BUDGET: &str = "semantic_disk_tier_budget_bytes";
pub const KV_ORDER_FALLBACKS: &str = "semantic_kv_order_fallbacks_total";

/// The queue depth changed (submit, admission, shutdown).
pub fn queue_depth(depth: usize) {
    metrics::gauge!(QUEUE_DEPTH).set(depth as f64);
}

/// Every engine series exists from start-up, so `rate()`, dashboards and
/// alerts see zeros on a fresh server, not nothing: counters at 0 for each
/// of their label values, histograms with no observations (registering a
/// histogram makes the Prometheus exporter render its buckets, `_sum` and
/// `_count` at 0), the queue gauge at 0. The engine thread's first
/// [`EngineGauges::publish`] sets the other gauges. Needs the recorder
/// installed first, as `semantic serve` does.
pub fn register() {
    let moves = [
        ("hot", "warm"),
        ("hot", "disk"),
        ("hot", "dropped"),
        ("warm", "disk"),
        ("warm", "dropped"),
        ("disk", "deleted"),
    ];
    for (from, to) in moves {
        metrics::counter!(EVICTIONS, "from" => from, "to" => to).increment(0);
    }
    metrics::counter!(ADMISSION_NO_ROOM).increment(0);
    metrics::counter!(KV_ORDER_FALLBACKS).increment(0);
    metrics::counter!(PROMPT_TOKENS).increment(0);
    metrics::counter!(GENERATION_TOKENS).increment(0);
    for source in CacheSource::ALL {
        let source = source.as_str();
        // Registering is enough: the recorder keeps it; the handle is dropped.
        let _ = metrics::histogram!(TIME_TO_FIRST_TOKEN, "cache_source" => source);
        // Cold prompts reuse nothing, so have no cached-tokens series.
        if source != CacheSource::Cold.as_str() {
            metrics::counter!(PROMPT_TOKENS_CACHED, "source" => source).increment(0);
        }
    }
    let _ = metrics::histogram!(INTER_TOKEN_LATENCY);
    let _ = metrics::histogram!(BATCH_SIZE);
    queue_depth(0);
}

/// A tier move of `count` agents' caches, e.g. hot → warm.
pub fn evicted(from: &'static str, to: &'static str, count: usize) {
    if count > 0 {
        metrics::counter!(EVICTIONS, "from" => from, "to" => to).increment(count as u64);
    }
}

/// The head of the queue found no slot or no blocks even after every
/// eviction admission may make; it waits for running requests to finish.
pub fn admission_no_room() {
    metrics::counter!(ADMISSION_NO_ROOM).increment(1);
}

/// A decode placed KV cells by llama.cpp's stock search `count` times,
/// because no free cell was left above a sequence's last one.
pub fn kv_order_fallbacks(count: u64) {
    metrics::counter!(KV_ORDER_FALLBACKS).increment(count);
}

/// One token sampled `gap` after the previous one of the same request.
pub fn inter_token(gap: Duration) {
    metrics::histogram!(INTER_TOKEN_LATENCY).record(gap.as_secs_f64());
}

/// A request finished: its first-token time by cache source and its tokens.
pub fn finished(usage: &Usage, timings: &Timings) {
    let source = usage.cache_source.as_str();
    if usage.completion_tokens > 0 {
        metrics::histogram!(TIME_TO_FIRST_TOKEN, "cache_source" => source)
            .record(timings.first_token);
    }
    metrics::counter!(PROMPT_TOKENS).increment(u64::from(usage.prompt_tokens));
    if usage.cached_tokens > 0 {
        metrics::counter!(PROMPT_TOKENS_CACHED, "source" => source)
            .increment(u64::from(usage.cached_tokens));
    }
    metrics::counter!(GENERATION_TOKENS).increment(u64::from(usage.completion_tokens));
}

/// Gauges recomputed by the engine thread after each step and while idle.
pub struct EngineGauges {
    window_start: Instant,
    window_tokens: u64,
    agents_sampled: Option<Instant>,
}

/// Throughput is averaged over at least this long, so one fast step does
/// not read as a burst.
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(1);
/// Counting agents per tier walks every agent; a few times a second is
/// plenty for a gauge.
const AGENTS_SAMPLE_EVERY: Duration = Duration::from_millis(250);

impl Default for EngineGauges {
    fn default() -> Self {
        Self::new()
    }
}

impl EngineGauges {
    pub fn new() -> Self {
        Self {
            window_start: Instant::now(),
            window_tokens: 0,
            agents_sampled: None,
        }
    }

    /// One step ran a batch of `batch_tokens` and sampled `sampled` tokens.
    pub fn step(&mut self, batch_tokens: usize, sampled: usize) {
        if batch_tokens > 0 {
            metrics::histogram!(BATCH_SIZE).record(batch_tokens as f64);
        }
        self.window_tokens += sampled as u64;
        self.roll_window(false);
    }

    /// Publish the engine's current state; `idle` forces the throughput
    /// window closed, so the gauge falls to 0 when nothing runs.
    pub fn publish(&mut self, running: usize, pool: &BlockPool, agents: &AgentCache, idle: bool) {
        metrics::gauge!(RUNNING).set(running as f64);
        pool_gauges(pool);
        let due = self
            .agents_sampled
            .is_none_or(|t| t.elapsed() >= AGENTS_SAMPLE_EVERY);
        if due || idle {
            agent_gauges(agents);
            self.agents_sampled = Some(Instant::now());
        }
        self.roll_window(idle);
    }

    fn roll_window(&mut self, force: bool) {
        let elapsed = self.window_start.elapsed();
        if elapsed < THROUGHPUT_WINDOW && !force {
            return;
        }
        let rate = self.window_tokens as f64 / elapsed.as_secs_f64().max(1e-3);
        metrics::gauge!(TOKENS_PER_SECOND).set(rate);
        self.window_start = Instant::now();
        self.window_tokens = 0;
    }
}

fn pool_gauges(pool: &BlockPool) {
    let (used, total) = (pool.used_blocks(), pool.total_blocks());
    metrics::gauge!(POOL_BLOCKS, "state" => "used").set(f64::from(used));
    metrics::gauge!(POOL_BLOCKS, "state" => "free").set(f64::from(total - used));
    let ratio = if total == 0 {
        0.0
    } else {
        f64::from(used) / f64::from(total)
    };
    metrics::gauge!(POOL_UTILIZATION).set(ratio);
}

/// Agents per tier; one being read from its file still counts as disk.
fn agent_gauges(agents: &AgentCache) {
    let counts = agents.tier_counts();
    let count = |name: &str| counts.get(name).copied().unwrap_or(0) as f64;
    metrics::gauge!(AGENTS, "tier" => "hot").set(count("hot"));
    metrics::gauge!(AGENTS, "tier" => "warm").set(count("warm") + count("staged"));
    metrics::gauge!(AGENTS, "tier" => "disk").set(count("disk") + count("loading"));
    metrics::gauge!(DISK_TIER_BYTES).set(agents.disk_bytes() as f64);
    // Unbounded (no disk tier, or none configured) reads as 0.
    let budget = agents.disk_budget();
    metrics::gauge!(DISK_TIER_BUDGET).set(if budget == u64::MAX {
        0.0
    } else {
        budget as f64
    });
}

/// When the engine thread last completed a loop iteration, readable from
/// any thread: the liveness signal of a thread that may block in llama.cpp.
#[derive(Debug)]
pub struct Heartbeat {
    origin: Instant,
    /// Milliseconds after `origin` of the last beat.
    last_ms: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl Heartbeat {
    pub fn beat(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(last)
    }
}
