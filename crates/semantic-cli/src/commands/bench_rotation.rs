//! `semantic bench rotation`: the workload `semantic` exists for. N agents,
//! each with its own long system prompt, take T turns of a growing
//! conversation in rounds (every agent's first turn, then every agent's
//! second, ...), C requests at a time. With more agents than the engine
//! and the warm tier hold, every returning turn finds its agent evicted:
//! a server that keeps agents' KV serves it from RAM or disk, one that does
//! not recomputes it. Optionally the server restarts between rounds.
//!
//! The report gives, per round, the first-token median and p95, the
//! round's wall time and (from our server's `usage.cache_source`) where the
//! reused tokens came from; then the whole run's wall time. Any failed or
//! timed-out request fails the command: a hang must show, not stall it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::stream::{self, StreamExt};
use semantic_engine::corpus::Corpus;
use serde_json::{json, Value};

use super::bench_server::BenchServer;
use crate::cli::BenchRotationArgs;
use crate::openai_client::{OpenAiClient, StreamedTurn};

const QUESTIONS: [&str; 5] = [
    "Summarise the text above in one sentence.",
    "Which detail of it matters most, and why?",
    "Explain that detail to a newcomer.",
    "What would you ask the author?",
    "Give the text a short title.",
];

/// One agent's conversation so far.
struct Agent {
    id: String,
    messages: Vec<Value>,
}

/// What one turn measured.
struct TurnSample {
    ttft: Duration,
    cached_tokens: Option<u32>,
    prompt_tokens: u32,
    cache_source: Option<String>,
}

/// One round's samples and wall time.
struct Round {
    samples: Vec<TurnSample>,
    wall: Duration,
}

pub fn run(args: BenchRotationArgs) -> anyhow::Result<()> {
    check_args(&args)?;
    let runtime = super::async_runtime()?;
    runtime.block_on(run_async(args))
}

fn check_args(args: &BenchRotationArgs) -> anyhow::Result<()> {
    if args.agents == 0 || args.turns == 0 || args.concurrency == 0 {
        bail!("--agents, --turns and --concurrency must be at least 1");
    }
    if args.max_tokens == 0 || args.system_chars == 0 {
        bail!("--max-tokens and --system-chars must be at least 1");
    }
    let spawned_only = args.kv_budget.is_some() || args.warm_budget.is_some();
    if args.target.base_url.is_some() && (spawned_only || !args.serve_args.is_empty()) {
        bail!("--kv-budget, --warm-budget and --serve-arg configure a spawned server; a --base-url server is configured where it runs");
    }
    if args.restart_between && args.target.base_url.is_some() && args.restart_command.is_none() {
        bail!("--restart-between with --base-url needs --restart-command");
    }
    Ok(())
}

/// The spawned server's extra arguments: budgets, then --serve-arg ones.
fn serve_args(args: &BenchRotationArgs) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    if let Some(budget) = &args.kv_budget {
        out.extend(["--kv-budget".into(), budget.into()]);
    }
    if let Some(budget) = &args.warm_budget {
        out.extend(["--warm-budget".into(), budget.into()]);
    }
    out.extend(args.serve_args.iter().map(OsString::from));
    out
}

async fn run_async(args: BenchRotationArgs) -> anyhow::Result<()> {
    let corpus = Corpus::from_option(args.target.corpus.as_deref())?;
    let work_dir = tempfile::Builder::new()
        .prefix("semantic-bench-rotation-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let mut server = BenchServer::open(
        &args.target,
        serve_args(&args),
        args.restart_command.clone(),
        work_dir.path(),
    )
    .await?;
    let model = server.served_model(&args.target).await?;
    println!("{}", header(&args, server.client()));
    let mut agents = new_agents(&args, &corpus);
    let started = Instant::now();
    let mut rounds = Vec::new();
    for turn in 0..args.turns {
        if turn > 0 && args.restart_between {
            eprintln!("restarting the server");
            server.restart().await?;
        }
        let round = run_round(server.client(), &model, &args, &mut agents, turn).await?;
        eprintln!(
            "round {}: {} turns in {:.1} s",
            turn + 1,
            round.samples.len(),
            round.wall.as_secs_f64()
        );
        rounds.push(round);
    }
    let total = started.elapsed();
    server.stop().await?;
    print!("{}", report(&rounds, total, server.is_spawned()));
    Ok(())
}

fn header(args: &BenchRotationArgs, client: &OpenAiClient) -> String {
    let mut pressure = Vec::new();
    if let Some(b) = &args.kv_budget {
        pressure.push(format!("--kv-budget {b}"));
    }
    if let Some(b) = &args.warm_budget {
        pressure.push(format!("--warm-budget {b}"));
    }
    pressure.extend(args.serve_args.iter().cloned());
    format!(
        "bench rotation: {} agents x {} turns, {} at a time, {}-character system prompts, max_tokens {}, against {}{}{}",
        args.agents,
        args.turns,
        args.concurrency,
        args.system_chars,
        args.max_tokens,
        client.base_url(),
        if pressure.is_empty() {
            String::new()
        } else {
            format!(" ({})", pressure.join(" "))
        },
        if args.restart_between {
            ", restarted between rounds"
        } else {
            ""
        },
    )
}

/// Agents with distinct system prompts (each starts at its own place in
/// the corpus, so no two share a prefix) and ids unique to this run.
fn new_agents(args: &BenchRotationArgs, corpus: &Corpus) -> Vec<Agent> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64 & 0xff_ffff);
    (0..args.agents)
        .map(|i| {
            let system: String = corpus.text(i).chars().take(args.system_chars).collect();
            Agent {
                id: format!("rot-{nonce:x}-{i}"),
                messages: vec![json!({"role": "system", "content": system})],
            }
        })
        .collect()
}

/// Every agent's turn `turn`, `concurrency` at a time; each agent's reply
/// joins its conversation for the next round.
async fn run_round(
    client: &OpenAiClient,
    model: &str,
    args: &BenchRotationArgs,
    agents: &mut [Agent],
    turn: usize,
) -> anyhow::Result<Round> {
    for agent in agents.iter_mut() {
        let question = QUESTIONS[turn % QUESTIONS.len()];
        agent
            .messages
            .push(json!({"role": "user", "content": question}));
    }
    let started = Instant::now();
    let timeout: Duration = args.request_timeout.into();
    let requests = agents.iter().map(|agent| {
        let body = json!({
            "model": model,
            "messages": agent.messages,
            "max_tokens": args.max_tokens,
            "temperature": 0,
        });
        async move {
            let reply = tokio::time::timeout(timeout, client.chat_stream(Some(&agent.id), body))
                .await
                .with_context(|| {
                    format!(
                        "agent {} turn {}: no answer within {timeout:?}",
                        agent.id,
                        turn + 1
                    )
                })?
                .with_context(|| format!("agent {} turn {}", agent.id, turn + 1))?;
            anyhow::Ok(reply)
        }
    });
    let replies: Vec<anyhow::Result<StreamedTurn>> = stream::iter(requests)
        .buffered(args.concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    let mut samples = Vec::new();
    for (agent, reply) in agents.iter_mut().zip(replies) {
        let reply = reply?;
        agent
            .messages
            .push(json!({"role": "assistant", "content": reply.text}));
        let usage = reply.usage.unwrap_or_default();
        samples.push(TurnSample {
            ttft: reply.ttft,
            cached_tokens: usage.cached_tokens,
            prompt_tokens: usage.prompt_tokens,
            cache_source: usage.cache_source,
        });
    }
    Ok(Round { samples, wall })
}

/// The value at quantile `q` of sorted `values` (nearest rank).
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn report(rounds: &[Round], total: Duration, ours: bool) -> String {
    let mut out = String::from(
        "\n| turn | requests | first token median | first token p95 | round wall | prompt tokens (median) | cached tokens (median) | cache sources |\n|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for (i, round) in rounds.iter().enumerate() {
        let mut ttfts: Vec<Duration> = round.samples.iter().map(|s| s.ttft).collect();
        ttfts.sort();
        let mut prompt: Vec<u32> = round.samples.iter().map(|s| s.prompt_tokens).collect();
        prompt.sort_unstable();
        let mut cached: Vec<u32> = round
            .samples
            .iter()
            .filter_map(|s| s.cached_tokens)
            .collect();
        cached.sort_unstable();
        let median = |v: &[u32]| v.get(v.len() / 2).map_or("n/a".to_owned(), u32::to_string);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            i + 1,
            round.samples.len(),
            secs(quantile(&ttfts, 0.5)),
            secs(quantile(&ttfts, 0.95)),
            secs(round.wall),
            median(&prompt),
            median(&cached),
            sources(&round.samples, ours),
        ));
    }
    let mut returning: Vec<Duration> = rounds
        .iter()
        .skip(1)
        .flat_map(|r| r.samples.iter().map(|s| s.ttft))
        .collect();
    returning.sort();
    out.push_str(&format!("\nwhole run: {}\n", secs(total)));
    if !returning.is_empty() {
        out.push_str(&format!(
            "returning turns (round 2 on): first token median {}, p95 {}\n",
            secs(quantile(&returning, 0.5)),
            secs(quantile(&returning, 0.95)),
        ));
    }
    out
}

/// "disk 10, warm 2": how many turns each cache source served.
fn sources(samples: &[TurnSample], ours: bool) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in samples {
        if let Some(source) = s.cache_source.as_deref() {
            *counts.entry(source).or_default() += 1;
        }
    }
    if counts.is_empty() {
        return if ours { "none reported" } else { "n/a" }.to_owned();
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=10).map(Duration::from_secs).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_secs(5));
        assert_eq!(quantile(&v, 0.95), Duration::from_secs(10));
        assert_eq!(quantile(&v[..1], 0.95), Duration::from_secs(1));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn sources_are_counted_per_tier() {
        let sample = |source: Option<&str>| TurnSample {
            ttft: Duration::ZERO,
            cached_tokens: None,
            prompt_tokens: 0,
            cache_source: source.map(str::to_owned),
        };
        let samples = [
            sample(Some("disk")),
            sample(Some("disk")),
            sample(Some("warm")),
        ];
        assert_eq!(sources(&samples, true), "disk 2, warm 1");
        assert_eq!(sources(&[sample(None)], false), "n/a");
    }
}
