//! `semantic bench soak`: a spawned server on loopback under a bounded,
//! mixed load for a fixed time, sampled as it runs.
//!
//! The load is what a multi-agent deployment does to a server over hours,
//! packed into minutes by small budgets: agents returning with growing
//! conversations, a stream of new agents (each a new file), streams the
//! client abandons after the first token, bursts of ten times the queue's
//! capacity, and agents evicted to disk and brought back. Each sample reads
//! resident memory and open files from `/proc`, the KV pool, tiers, disk
//! ledger and 5xx count from `/metrics`, and the cache directory's size.
//!
//! At the end every agent is evicted to disk and the engine must hold no
//! KV block at all: anything else is a leak. The command fails on any 5xx,
//! a leaked block, a cache directory over its budget, or resident memory
//! grown by 5 % or more from the first sample after the warm-up.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use semantic_engine::corpus::Corpus;
use serde_json::{json, Value};

use super::bench_load::{AgentRun, SYSTEM_CHARS};
use super::soak_probe::{Probe, Reading};
use super::spawned_server::{SpawnOptions, SpawnedServer};
use crate::byte_size::ByteSize;
use crate::cli::BenchSoakArgs;
use crate::openai_client::OpenAiClient;

/// Resident memory may grow less than this from the warmed-up sample.
const MAX_GROWTH: f64 = 0.05;
/// Requests in each burst, per slot of the server's queue.
const BURST_FACTOR: usize = 10;
/// Time between evictions of a returning agent to disk.
const EVICT_EVERY: Duration = Duration::from_secs(5);
/// Longest wait for the engine to go idle after the load.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

pub fn run(args: BenchSoakArgs) -> anyhow::Result<()> {
    check(&args)?;
    let runtime = super::async_runtime()?;
    runtime.block_on(run_async(args))
}

fn check(args: &BenchSoakArgs) -> anyhow::Result<()> {
    let duration: Duration = args.duration.into();
    if duration < Duration::from_secs(10) {
        bail!("--duration must be at least 10s");
    }
    if Duration::from(args.sample_every).is_zero() || Duration::from(args.burst_every).is_zero() {
        bail!("--sample-every and --burst-every must be more than 0");
    }
    if args.agents == 0 || args.max_tokens == 0 || args.queue_capacity == 0 {
        bail!("--agents, --max-tokens and --queue-capacity must be at least 1");
    }
    Ok(())
}

/// Statuses of the requests the soak's own loops sent (the returning
/// agents' come back with their samples).
#[derive(Default)]
struct Tally {
    by_status: Mutex<BTreeMap<u16, u64>>,
    requests: AtomicU64,
}

impl Tally {
    fn add(&self, status: u16) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut map) = self.by_status.lock() {
            *map.entry(status).or_default() += 1;
        }
    }

    fn snapshot(&self) -> BTreeMap<u16, u64> {
        self.by_status.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// What every load loop shares.
struct Load {
    client: Arc<OpenAiClient>,
    corpus: Corpus,
    tally: Tally,
    deadline: Instant,
    max_tokens: u32,
    /// Agents the returning loops use, for the eviction loop.
    returning: Vec<String>,
}

impl Load {
    fn body(&self, agent_no: usize, question: &str, max_tokens: u32) -> Value {
        let context: String = self
            .corpus
            .text(agent_no)
            .chars()
            .take(SYSTEM_CHARS)
            .collect();
        json!({
            "model": "default", "temperature": 0, "max_tokens": max_tokens,
            "messages": [
                {"role": "system", "content": format!("You are agent {agent_no}. Context:\n{context}")},
                {"role": "user", "content": question},
            ],
        })
    }

    fn running(&self) -> bool {
        Instant::now() < self.deadline
    }

    async fn pause(&self, d: Duration) {
        tokio::time::sleep(d.min(self.deadline.saturating_duration_since(Instant::now()))).await;
    }
}

async fn run_async(args: BenchSoakArgs) -> anyhow::Result<()> {
    let work_dir = tempfile::Builder::new()
        .prefix("semantic-bench-soak-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let mut server = spawn(&args, work_dir.path()).await?;
    let pid = server
        .pid()
        .context("the spawned server has no process id")?;
    let probe = Probe::new(pid, server.cache_dir());
    let client = Arc::new(OpenAiClient::new(server.client().base_url(), None)?);
    let duration: Duration = args.duration.into();
    let started = Instant::now();
    let load = Arc::new(Load {
        client: client.clone(),
        corpus: Corpus::from_option(args.corpus.as_deref())?,
        tally: Tally::default(),
        deadline: started + duration,
        max_tokens: args.max_tokens,
        returning: (0..args.agents)
            .map(|i| format!("soak-{pid}-{i}"))
            .collect(),
    });
    eprintln!(
        "soak: {:.0} s against {} (pid {pid})",
        duration.as_secs_f64(),
        client.base_url()
    );
    let workers = start_load(&load, &args);
    let readings = sample_until(&probe, &client, started, &load, args.sample_every.into()).await?;
    let mut statuses = load.tally.snapshot();
    for worker in workers {
        for sample in worker.await.context("a load task panicked")?? {
            *statuses.entry(sample.status).or_default() += 1;
        }
    }
    let leaked = settle(&client, &load.returning).await?;
    let last = probe.read(&client, started.elapsed()).await?;
    let verdict = Verdict::judge(&args, &readings, &last, leaked, &statuses);
    print!("{}", report(&args, &readings, &last, &statuses, &verdict));
    server.stop().await?;
    verdict.result()
}

async fn spawn(args: &BenchSoakArgs, work_dir: &std::path::Path) -> anyhow::Result<SpawnedServer> {
    let model = super::bench_server::model_file(args.model.as_deref())?;
    let settings = [
        ("--queue-capacity", args.queue_capacity.to_string()),
        ("--max-sequences", args.max_sequences.to_string()),
        ("--context-tokens", args.context_tokens.to_string()),
        ("--warm-budget", args.warm_budget.0.to_string()),
        ("--disk-budget", args.disk_budget.0.to_string()),
    ];
    let extra_args = settings
        .into_iter()
        .flat_map(|(flag, value)| [flag.into(), value.into()])
        .collect();
    SpawnedServer::start(SpawnOptions {
        model,
        kv_type: args.kv_type,
        work_dir: work_dir.to_owned(),
        extra_args,
    })
    .await
}

type Worker = tokio::task::JoinHandle<anyhow::Result<Vec<super::bench_load::Sample>>>;

/// Start every load loop; each stops at the deadline.
fn start_load(load: &Arc<Load>, args: &BenchSoakArgs) -> Vec<Worker> {
    let mut workers: Vec<Worker> = load
        .returning
        .iter()
        .enumerate()
        .map(|(i, agent)| {
            let run = AgentRun {
                client: load.client.clone(),
                model: "default".to_owned(),
                agent: agent.clone(),
                system: load.corpus.text(i).chars().take(SYSTEM_CHARS).collect(),
                max_tokens: load.max_tokens,
            };
            tokio::spawn(run.run(load.deadline))
        })
        .collect();
    let burst = args.queue_capacity * BURST_FACTOR;
    let burst_every: Duration = args.burst_every.into();
    let loops = [
        tokio::spawn(new_agents(load.clone())),
        tokio::spawn(abandoned_streams(load.clone())),
        tokio::spawn(bursts(load.clone(), burst, burst_every)),
        tokio::spawn(evictions(load.clone())),
    ];
    workers.extend(loops.into_iter().map(|task| {
        tokio::spawn(async move {
            task.await.context("a load loop panicked")??;
            Ok(Vec::new())
        })
    }));
    workers
}

/// One turn each of a stream of agents never seen before (each leaves a
/// file, so the disk budget keeps deleting the oldest).
async fn new_agents(load: Arc<Load>) -> anyhow::Result<()> {
    let mut n = 0usize;
    while load.running() {
        let body = load.body(
            n,
            "Name one thing the text mentions.",
            load.max_tokens / 2 + 1,
        );
        let agent = format!("soak-new-{n}");
        let outcome = load.client.chat_outcome(Some(&agent), body, false).await?;
        load.tally.add(outcome.status);
        n += 1;
    }
    Ok(())
}

/// Streams abandoned after their first bytes, as a client that gives up.
async fn abandoned_streams(load: Arc<Load>) -> anyhow::Result<()> {
    let mut n = 0usize;
    while load.running() {
        let body = load.body(n % 3, "Write a long story about the text.", 256);
        let agent = format!("soak-cancel-{}", n % 3);
        let status = load.client.chat_abandoned(Some(&agent), body).await?;
        load.tally.add(status);
        n += 1;
        load.pause(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Every `every`, `size` short requests at once: most must be refused
/// (429) by the bounded queue, none may fail.
async fn bursts(load: Arc<Load>, size: usize, every: Duration) -> anyhow::Result<()> {
    load.pause(every / 2).await;
    while load.running() {
        let requests: Vec<_> = (0..size)
            .map(|i| {
                let client = load.client.clone();
                let body = load.body(i % 5, "Answer in one word: is the text long?", 4);
                tokio::spawn(async move { client.chat_outcome(None, body, false).await })
            })
            .collect();
        for request in requests {
            let outcome = request.await.context("a burst request panicked")??;
            load.tally.add(outcome.status);
        }
        load.pause(every).await;
    }
    Ok(())
}

/// Every few seconds a returning agent is sent to disk; its next turn
/// reads it back. 404 (never seen, or deleted by the disk budget) and 409
/// (a turn in flight) are fine; a 5xx is not.
async fn evictions(load: Arc<Load>) -> anyhow::Result<()> {
    let mut n = 0usize;
    while load.running() {
        load.pause(EVICT_EVERY).await;
        let agent = &load.returning[n % load.returning.len()];
        let path = format!("/v1/agents/{agent}/evict");
        let status = load
            .client
            .post_status(&path, json!({"tier": "disk"}))
            .await?;
        load.tally.add(status);
        n += 1;
    }
    Ok(())
}

/// A reading at the start and every `every` until the deadline.
async fn sample_until(
    probe: &Probe,
    client: &OpenAiClient,
    started: Instant,
    load: &Load,
    every: Duration,
) -> anyhow::Result<Vec<Reading>> {
    let mut readings = vec![probe.read(client, started.elapsed()).await?];
    eprintln!("{}", reading_row(&readings[0]));
    while load.running() {
        load.pause(every).await;
        let reading = probe.read(client, started.elapsed()).await?;
        eprintln!("{}", reading_row(&reading));
        readings.push(reading);
    }
    Ok(readings)
}

/// After the load: evict every agent still in the engine or RAM to disk
/// and wait for the engine to hold no block. Returns the blocks still used
/// (leaked) when it gives up.
async fn settle(client: &OpenAiClient, returning: &[String]) -> anyhow::Result<f64> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let agents = listed_agents(client).await?;
        for (agent, tier) in &agents {
            if tier != "disk" {
                let path = format!("/v1/agents/{agent}/evict");
                client.post_status(&path, json!({"tier": "disk"})).await?;
            }
        }
        let (_, metrics) = client.get_text("/metrics").await?;
        let used = super::soak_probe::metric(&metrics, r#"semantic_kv_pool_blocks{state="used"}"#)
            .unwrap_or(f64::NAN);
        let all_down = agents.iter().all(|(_, tier)| tier == "disk");
        if (used == 0.0 && all_down) || Instant::now() > deadline {
            if used != 0.0 {
                eprintln!(
                    "soak: {used} blocks still used; agents: {agents:?} (returning: {returning:?})"
                );
            }
            return Ok(used);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every agent `GET /v1/agents` lists, with its tier.
async fn listed_agents(client: &OpenAiClient) -> anyhow::Result<Vec<(String, String)>> {
    let (status, text) = client.get_text("/v1/agents").await?;
    if status != 200 {
        bail!("GET /v1/agents answered {status}: {text}");
    }
    let body: Value = serde_json::from_str(&text).context("GET /v1/agents is not JSON")?;
    let data = body["data"].as_array().cloned().unwrap_or_default();
    Ok(data
        .iter()
        .map(|a| {
            let field = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
            (field("id"), field("tier"))
        })
        .collect())
}

/// The run's targets, each met or not.
struct Verdict {
    failures: Vec<String>,
    growth: Option<f64>,
    endpoint_growth: Option<f64>,
}

impl Verdict {
    fn judge(
        args: &BenchSoakArgs,
        readings: &[Reading],
        last: &Reading,
        leaked: f64,
        statuses: &BTreeMap<u16, u64>,
    ) -> Self {
        let mut failures = Vec::new();
        let server_errors: u64 = statuses.range(500..).map(|(_, n)| n).sum();
        if server_errors > 0 || last.server_errors > 0.0 {
            failures.push(format!(
                "{server_errors} 5xx answers seen, {} counted by the server",
                last.server_errors
            ));
        }
        if leaked != 0.0 {
            failures.push(format!(
                "{leaked} KV blocks still used with every agent on disk"
            ));
        }
        // Each file's header (tokens as JSON-free metadata) is outside the ledger.
        let allowed = args.disk_budget.0 + args.disk_budget.0 / 20 + (1 << 20);
        if last.cache_dir_bytes > allowed {
            failures.push(format!(
                "the cache directory holds {} with a disk budget of {}",
                ByteSize(last.cache_dir_bytes),
                args.disk_budget
            ));
        }
        let growth = memory_growth(readings, args.warm_up.into());
        if let Some(g) = growth.filter(|g| *g >= MAX_GROWTH) {
            failures.push(format!(
                "resident memory grew {:.1} % after the warm-up",
                g * 100.0
            ));
        }
        Self {
            failures,
            growth,
            endpoint_growth: endpoint_growth(readings, args.warm_up.into()),
        }
    }

    fn result(&self) -> anyhow::Result<()> {
        if self.failures.is_empty() {
            return Ok(());
        }
        bail!("soak failed: {}", self.failures.join("; "))
    }
}

/// Growth of resident memory over the run after `warm_up`, from the
/// least-squares line through every reading since: its rise from the first
/// such reading to the last, relative to its value at the first. Resident
/// memory swings by tens of MB with what the tiers hold at the moment of a
/// sample, so two single readings would judge that swing, not a leak; the
/// line judges the trend. `None` with fewer than three such readings.
fn memory_growth(readings: &[Reading], warm_up: Duration) -> Option<f64> {
    let points: Vec<(f64, f64)> = readings
        .iter()
        .filter(|r| r.at >= warm_up)
        .map(|r| (r.at.as_secs_f64(), r.rss_bytes as f64))
        .collect();
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let covariance: f64 = points
        .iter()
        .map(|(t, y)| (t - mean_t) * (y - mean_y))
        .sum();
    let variance: f64 = points.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    let slope = covariance / variance.max(f64::MIN_POSITIVE);
    let (first, last) = (points[0].0, points[points.len() - 1].0);
    let at_first = mean_y + slope * (first - mean_t);
    Some(slope * (last - first) / at_first.max(1.0))
}

/// The last reading against the first after `warm_up` (reported beside
/// the trend, not judged).
fn endpoint_growth(readings: &[Reading], warm_up: Duration) -> Option<f64> {
    let base = readings.iter().find(|r| r.at >= warm_up)?;
    let last = readings.last().filter(|r| r.at > base.at)?;
    Some(last.rss_bytes as f64 / base.rss_bytes.max(1) as f64 - 1.0)
}

fn reading_row(r: &Reading) -> String {
    format!(
        "| {:.0} | {} | {} | {:.0}/{:.0} | {:.0}/{:.0}/{:.0} | {} | {} | {:.0} | {:.0} |",
        r.at.as_secs_f64(),
        ByteSize(r.rss_bytes),
        r.open_fds,
        r.pool_used_blocks,
        r.pool_total_blocks,
        r.agents_hot,
        r.agents_warm,
        r.agents_disk,
        ByteSize(r.disk_ledger_bytes as u64),
        ByteSize(r.cache_dir_bytes),
        r.disk_deleted,
        r.server_errors,
    )
}

fn report(
    args: &BenchSoakArgs,
    readings: &[Reading],
    last: &Reading,
    statuses: &BTreeMap<u16, u64>,
    verdict: &Verdict,
) -> String {
    let mut out = format!(
        "soak: {} returning agents, bursts of {} every {}, warm budget {}, disk budget {}\n\n",
        args.agents,
        args.queue_capacity * BURST_FACTOR,
        args.burst_every,
        args.warm_budget,
        args.disk_budget
    );
    out.push_str("| s | RSS | fds | KV blocks used/total | agents hot/warm/disk | disk ledger | cache dir | files deleted | 5xx |\n");
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in readings {
        out.push_str(&reading_row(r));
        out.push('\n');
    }
    out.push_str(&format!(
        "{} (after: every agent evicted to disk)\n\n",
        reading_row(last)
    ));
    let statuses: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    out.push_str(&format!("requests by status: {}\n", statuses.join(", ")));
    out.push_str(&match verdict.growth {
        Some(g) => format!(
            "resident memory growth after warm-up (least-squares trend): {:+.1} %\n",
            g * 100.0
        ),
        None => format!(
            "resident memory growth: n/a (fewer than three samples after the {} warm-up)\n",
            args.warm_up
        ),
    });
    if let Some(g) = verdict.endpoint_growth {
        out.push_str(&format!(
            "last sample against the first after warm-up: {:+.1} % (not judged: tiers swing)\n",
            g * 100.0
        ));
    }
    out.push_str(&format!(
        "KV blocks used with every agent on disk: {:.0}\n",
        last.pool_used_blocks
    ));
    out.push_str(if verdict.failures.is_empty() {
        "verdict: pass\n"
    } else {
        "verdict: FAIL\n"
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, rss: u64) -> Reading {
        Reading {
            at: Duration::from_secs(secs),
            rss_bytes: rss,
            ..Reading::default()
        }
    }

    #[test]
    fn growth_is_the_trend_after_the_warm_up() {
        // A steady rise of 2 per 300 s from 100: 4 % over 600 s.
        let readings = [at(0, 50), at(300, 100), at(600, 102), at(900, 104)];
        let g = memory_growth(&readings, Duration::from_secs(300)).unwrap();
        assert!((g - 0.04).abs() < 1e-9, "{g}");
        // A swing that comes back is no growth, whichever sample is last.
        let swing = [
            at(300, 100),
            at(600, 110),
            at(900, 100),
            at(1200, 110),
            at(1500, 100),
        ];
        let g = memory_growth(&swing, Duration::from_secs(300)).unwrap();
        assert!(g.abs() < 0.01, "{g}");
        // Too few samples after the warm-up are not judged.
        assert_eq!(
            memory_growth(&readings[..3], Duration::from_secs(300)),
            None
        );
        assert_eq!(memory_growth(&readings, Duration::from_secs(1000)), None);
        let e = endpoint_growth(&readings, Duration::from_secs(300)).unwrap();
        assert!((e - 0.04).abs() < 1e-9, "{e}");
    }
}
