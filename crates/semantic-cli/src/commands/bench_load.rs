//! `semantic bench load`: many agents holding conversations at once, for a
//! fixed time, as a multi-agent system would. Each agent has its own system
//! prompt (a slice of the corpus) and alternates streamed and whole
//! requests of varied lengths, extending its history turn after turn, so
//! the run mixes cold prefills, hot reuse and shared prefixes. A refused
//! request (429) waits its `Retry-After`. The report gives request counts
//! by status and p50/p95/p99 of first-token time (streamed requests) and
//! request latency; any 5xx or broken response fails the command.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use semantic_engine::corpus::Corpus;
use serde_json::{json, Value};

use super::bench_server::BenchServer;
use crate::cli::BenchLoadArgs;
use crate::openai_client::{ChatOutcome, OpenAiClient};

/// Characters of corpus text in each agent's system prompt (also `bench
/// soak`'s).
pub(super) const SYSTEM_CHARS: usize = 1200;
/// Turns before an agent starts a fresh conversation (bounds context growth).
const TURNS_PER_CONVERSATION: usize = 8;
const QUESTIONS: [&str; 4] = [
    "Summarise the text above in one sentence.",
    "What is one surprising detail in it?",
    "Explain that detail to a child.",
    "Give a title for the text.",
];

/// One request as the client saw it.
#[derive(Clone, Debug)]
pub(super) struct Sample {
    pub(super) status: u16,
    streamed: bool,
    ttft: Option<Duration>,
    latency: Duration,
    cache_source: Option<String>,
    completion_chars: usize,
}

pub fn run(args: BenchLoadArgs) -> anyhow::Result<()> {
    if args.agents == 0 || args.max_tokens == 0 {
        bail!("--agents and --max-tokens must be at least 1");
    }
    let runtime = super::async_runtime()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: BenchLoadArgs) -> anyhow::Result<()> {
    let corpus = Corpus::from_option(args.target.corpus.as_deref())?;
    let work_dir = tempfile::Builder::new()
        .prefix("semantic-bench-load-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let server = BenchServer::open(&args.target, Vec::new(), None, work_dir.path()).await?;
    // The agents' tasks share one client of their own.
    let client = Arc::new(OpenAiClient::new(
        server.client().base_url(),
        args.target.api_key.clone(),
    )?);
    let model = server.served_model(&args.target).await?;
    let duration: Duration = args.duration.into();
    eprintln!(
        "{} agents for {:.0} s against {}",
        args.agents,
        duration.as_secs_f64(),
        client.base_url()
    );
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for agent in 0..args.agents {
        let system: String = corpus.text(agent).chars().take(SYSTEM_CHARS).collect();
        let agent_run = AgentRun {
            client: client.clone(),
            model: model.clone(),
            agent: format!("load-{}-{agent}", std::process::id()),
            system,
            max_tokens: args.max_tokens,
        };
        tasks.push(tokio::spawn(agent_run.run(deadline)));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.context("an agent task panicked")??);
    }
    let elapsed = started.elapsed();
    print!("{}", report(&samples, elapsed, args.agents));
    let failures = samples.iter().filter(|s| s.status >= 500).count();
    if failures > 0 {
        bail!("{failures} requests failed with a 5xx status");
    }
    Ok(())
}

/// One agent's conversation loop: turns of growing history until the
/// deadline, a fresh conversation every few turns (also `bench soak`'s
/// returning agents).
pub(super) struct AgentRun {
    pub(super) client: Arc<OpenAiClient>,
    pub(super) model: String,
    pub(super) agent: String,
    pub(super) system: String,
    pub(super) max_tokens: u32,
}

impl AgentRun {
    pub(super) async fn run(self, deadline: Instant) -> anyhow::Result<Vec<Sample>> {
        let mut samples = Vec::new();
        let mut history = self.fresh_history();
        let mut turn = 0usize;
        while Instant::now() < deadline {
            let streamed = turn.is_multiple_of(2);
            let max_tokens = [self.max_tokens / 2, self.max_tokens, self.max_tokens / 4][turn % 3];
            let body = json!({
                "model": self.model, "messages": history, "temperature": 0,
                "max_tokens": max_tokens.max(1),
            });
            let outcome = self
                .client
                .chat_outcome(Some(&self.agent), body, streamed)
                .await
                .with_context(|| format!("agent {}", self.agent))?;
            samples.push(sample(&outcome, streamed));
            match (outcome.status, outcome.turn) {
                (200, Some(reply)) => {
                    turn += 1;
                    if turn.is_multiple_of(TURNS_PER_CONVERSATION) {
                        history = self.fresh_history();
                    } else {
                        push(&mut history, "assistant", &reply.text);
                        push(&mut history, "user", QUESTIONS[turn % QUESTIONS.len()]);
                    }
                }
                (429 | 503, _) => {
                    let wait = Duration::from_secs(outcome.retry_after.unwrap_or(1).min(5));
                    tokio::time::sleep(
                        wait.min(deadline.saturating_duration_since(Instant::now())),
                    )
                    .await;
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Ok(samples)
    }

    fn fresh_history(&self) -> Value {
        json!([
            {"role": "system", "content": format!("You are agent {}. Context:\n{}", self.agent, self.system)},
            {"role": "user", "content": QUESTIONS[0]},
        ])
    }
}

fn push(history: &mut Value, role: &str, content: &str) {
    if let Some(messages) = history.as_array_mut() {
        messages.push(json!({"role": role, "content": content}));
    }
}

fn sample(outcome: &ChatOutcome, streamed: bool) -> Sample {
    let turn = outcome.turn.as_ref();
    Sample {
        status: outcome.status,
        streamed,
        ttft: turn.filter(|_| streamed).map(|t| t.ttft),
        latency: outcome.latency,
        cache_source: turn
            .and_then(|t| t.usage.as_ref())
            .and_then(|u| u.cache_source.clone()),
        completion_chars: turn.map_or(0, |t| t.text.len()),
    }
}

/// Nearest-rank percentile of sorted values (`p` in 0..=100).
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn row(name: &str, mut values: Vec<Duration>) -> String {
    values.sort();
    let ms = |p| {
        percentile(&values, p).map_or("n/a".to_owned(), |d| {
            format!("{:.0}", d.as_secs_f64() * 1e3)
        })
    };
    format!(
        "| {name} | {} | {} | {} | {} |\n",
        ms(50.0),
        ms(95.0),
        ms(99.0),
        values.len()
    )
}

fn report(samples: &[Sample], elapsed: Duration, agents: usize) -> String {
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for s in samples {
        *by_status.entry(s.status).or_default() += 1;
    }
    let ok: Vec<&Sample> = samples.iter().filter(|s| s.status == 200).collect();
    let statuses: Vec<String> = by_status.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    let mut out = format!(
        "{} requests from {agents} agents in {:.1} s ({:.2} completed/s); status {}; streamed {}, whole {}\n\n",
        samples.len(),
        elapsed.as_secs_f64(),
        ok.len() as f64 / elapsed.as_secs_f64(),
        statuses.join(", "),
        ok.iter().filter(|s| s.streamed).count(),
        ok.iter().filter(|s| !s.streamed).count(),
    );
    out.push_str("| ms | p50 | p95 | p99 | n |\n|---|---:|---:|---:|---:|\n");
    out.push_str(&row(
        "first token (streamed)",
        ok.iter().filter_map(|s| s.ttft).collect(),
    ));
    let mut sources: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for s in &ok {
        if let (Some(ttft), Some(source)) = (s.ttft, &s.cache_source) {
            sources.entry(source.clone()).or_default().push(ttft);
        }
    }
    for (source, values) in sources {
        out.push_str(&row(&format!("first token, {source}"), values));
    }
    out.push_str(&row(
        "request latency",
        ok.iter().map(|s| s.latency).collect(),
    ));
    let chars: usize = ok.iter().map(|s| s.completion_chars).sum();
    out.push_str(&format!(
        "\n{:.0} completion characters/s overall\n",
        chars as f64 / elapsed.as_secs_f64()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&v, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&v, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&v[..1], 95.0), Some(Duration::from_millis(1)));
    }
}
