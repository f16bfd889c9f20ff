//! `semantic bench ttft`: what a returning agent's first token costs.
//!
//! One agent's history is N tokens of corpus text; its next turn adds a
//! short question. We time that turn's first token (request sent until the
//! first SSE chunk with text) in four states of the agent's KV cache:
//! *cold* (nothing cached), *hot* (resident in the engine), *warm* (evicted
//! to RAM with our `POST /v1/agents/{id}/evict`) and *disk* (after a server
//! restart). Everything goes over HTTP as an OpenAI client would, so the
//! same command measures other servers with `--base-url`; states a server
//! cannot be put in are reported as n/a, never approximated.
//!
//! Every run uses its own agent and its own corpus offset, and the system
//! prompt names the agent, so no two measured prompts share more than a few
//! template tokens: only the state under test can make a turn cheaper.

use std::collections::HashMap;

use anyhow::{bail, Context};
use semantic_domain::{KvType, TokenId};
use semantic_engine::corpus::Corpus;
use semantic_engine::{LoadedModel, ModelInfo};
use serde_json::{json, Value};

use super::bench_server::BenchServer;
use crate::cli::BenchTtftArgs;
use crate::openai_client::{Eviction, OpenAiClient, StreamedTurn};

/// Tokens of the unmeasured turn that builds the agent's history.
const WARMUP_REPLY_TOKENS: u32 = 8;
/// Corpus tokens between two agents' starting points.
const OFFSET_STRIDE: usize = 97;
/// Rough size of a token in characters, when no local tokenizer is loaded.
const CHARS_PER_TOKEN: usize = 4;
/// The capacity table's agent size and memory budget.
const CAPACITY_AGENT_TOKENS: u64 = 2048;
const CAPACITY_BUDGET_BYTES: u64 = 1 << 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum State {
    Cold,
    Hot,
    Warm,
    Disk,
}

const STATES: [State; 4] = [State::Cold, State::Hot, State::Warm, State::Disk];

impl State {
    fn name(self) -> &'static str {
        match self {
            Self::Cold => "cold",
            Self::Hot => "hot",
            Self::Warm => "warm",
            Self::Disk => "disk",
        }
    }
}

/// One measured turn.
#[derive(Clone, Debug)]
struct Sample {
    run: usize,
    ttft_ms: f64,
    prompt_tokens: u32,
    cached_tokens: Option<u32>,
    cache_source: Option<String>,
}

impl Sample {
    fn new(run: usize, turn: &StreamedTurn) -> Self {
        let usage = turn.usage.clone().unwrap_or_default();
        Self {
            run,
            ttft_ms: turn.ttft.as_secs_f64() * 1000.0,
            prompt_tokens: usage.prompt_tokens,
            cached_tokens: usage.cached_tokens,
            cache_source: usage.cache_source,
        }
    }
}

/// Samples by context size and state, and why a state was not measured.
#[derive(Default)]
struct Results {
    samples: HashMap<(u32, State), Vec<Sample>>,
    not_measured: HashMap<State, String>,
}

impl Results {
    fn add(&mut self, context: u32, state: State, sample: Sample) {
        self.samples
            .entry((context, state))
            .or_default()
            .push(sample);
    }
}

pub fn run(args: BenchTtftArgs) -> anyhow::Result<()> {
    check_args(&args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(args))
}

fn check_args(args: &BenchTtftArgs) -> anyhow::Result<()> {
    if args.contexts.is_empty() || args.contexts.contains(&0) {
        bail!("--contexts needs one or more sizes above 0, e.g. 512,1024");
    }
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if args.max_tokens == 0 {
        bail!("--max-tokens must be at least 1");
    }
    Ok(())
}

async fn run_async(args: BenchTtftArgs) -> anyhow::Result<()> {
    let model = local_model(&args)?;
    let corpus = Corpus::from_option(args.target.corpus.as_deref())?;
    let texts = ContextTexts::new(&corpus, model.as_ref());
    let work_dir = tempfile::Builder::new()
        .prefix("semantic-bench-ttft-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let mut target = BenchServer::open(&args.target, Vec::new(), None, work_dir.path()).await?;
    let served = target.served_model(&args.target).await?;
    print_header(
        &args,
        &target,
        model.as_ref().map(LoadedModel::info),
        &served,
    );
    let plan = Plan {
        args: &args,
        texts: &texts,
        served,
        nonce: nonce(),
    };
    let mut results = Results::default();
    if !target.is_spawned() {
        let why = "only a server this command spawns can be restarted".to_owned();
        results.not_measured.insert(State::Disk, why);
    }
    warm_up_process(target.client(), &plan).await?;
    let histories = measure_live_states(target.client(), &plan, &mut results).await?;
    measure_disk(&mut target, &plan, &histories, &mut results).await?;
    target.stop().await?;
    print_tables(&args, &results);
    match &model {
        Some(model) => print_capacity(model.info(), &model_label(&args, model)),
        None => println!("\n(no local model: pass --model to print the KV capacity table)"),
    }
    Ok(())
}

/// The model loaded here, for exact token counts and KV geometry. A spawned
/// server needs one; for a foreign server it is optional.
fn local_model(args: &BenchTtftArgs) -> anyhow::Result<Option<LoadedModel>> {
    let path = match crate::model_path::resolve(args.target.model.as_deref()) {
        Ok(path) => path,
        Err(_) if args.target.base_url.is_some() => return Ok(None),
        Err(e) => return Err(e),
    };
    let model = LoadedModel::load(&path, Default::default(), |_| {})
        .with_context(|| format!("cannot load --model {}", path.display()))?;
    Ok(Some(model))
}

/// Distinguishes this invocation's agents from earlier ones on a server
/// that outlives the benchmark.
fn nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}", nanos & 0xffff_ffff_ffff)
}

/// Corpus text cut to a number of tokens, from a given starting point.
struct ContextTexts<'m> {
    text: String,
    /// The local tokenizer and the corpus in its tokens, when loaded.
    tokens: Option<(&'m LoadedModel, Vec<TokenId>)>,
}

impl<'m> ContextTexts<'m> {
    fn new(corpus: &Corpus, model: Option<&'m LoadedModel>) -> Self {
        let text = corpus.text(0);
        let tokens = model.map(|m| (m, m.tokenize(&text)));
        Self { text, tokens }
    }

    /// `n` tokens of corpus starting `start` tokens in, wrapping around.
    /// Exact for the local tokenizer (up to re-tokenizing the cut's edges);
    /// about `n` for a server with another one (its usage says how many).
    fn window(&self, start: usize, n: usize) -> String {
        match &self.tokens {
            Some((model, tokens)) if !tokens.is_empty() => {
                let cut: Vec<TokenId> =
                    (0..n).map(|j| tokens[(start + j) % tokens.len()]).collect();
                model.detokenize(&cut)
            }
            _ => self
                .text
                .chars()
                .cycle()
                .skip(start * CHARS_PER_TOKEN)
                .take(n * CHARS_PER_TOKEN)
                .collect(),
        }
    }
}

/// What every measurement needs.
struct Plan<'a> {
    args: &'a BenchTtftArgs,
    texts: &'a ContextTexts<'a>,
    /// The `model` field of requests.
    served: String,
    nonce: String,
}

/// One agent: its id, its history (the context) and its next question.
struct Probe {
    /// Unique among this invocation's agents; opens the system prompt.
    key: usize,
    agent: String,
    context: String,
    question: String,
}

impl Plan<'_> {
    fn probe(&self, context_index: usize, state: State, run: usize) -> Probe {
        let runs = self.args.runs;
        let state_index = STATES.iter().position(|&s| s == state).unwrap_or(0);
        let key = (context_index * STATES.len() + state_index) * runs + run;
        let tokens = self.args.contexts[context_index];
        Probe {
            key,
            agent: format!("ttft-{tokens}-{}-{run}-{}", state.name(), self.nonce),
            context: self.texts.window(key * OFFSET_STRIDE, tokens as usize),
            question: format!("Question {run}: what is the main topic?"),
        }
    }

    fn body(&self, messages: Value, max_tokens: u32) -> Value {
        json!({
            "model": self.served,
            "messages": messages,
            "temperature": 0,
            "max_tokens": max_tokens,
        })
    }
}

impl Probe {
    /// Starts with what is unique to the agent, so that two agents'
    /// prompts share only a few template tokens: fewer than a server's
    /// prefix cache (ours: 32 tokens, vLLM: a 16-token block) would reuse.
    fn system(&self) -> String {
        format!(
            "Session {} ({}). You are a careful reader.",
            self.key, self.agent
        )
    }

    fn cold_messages(&self) -> Value {
        json!([
            {"role": "system", "content": self.system()},
            {"role": "user", "content": format!("{}\n\n{}", self.context, self.question)},
        ])
    }

    fn history_messages(&self) -> Value {
        json!([
            {"role": "system", "content": self.system()},
            {"role": "user", "content": self.context},
        ])
    }

    fn next_turn_messages(&self, reply: &str) -> Value {
        json!([
            {"role": "system", "content": self.system()},
            {"role": "user", "content": self.context},
            {"role": "assistant", "content": reply},
            {"role": "user", "content": self.question},
        ])
    }
}

/// An agent whose history was built before the restart, for the disk state.
struct History {
    context: u32,
    run: usize,
    probe: Probe,
    reply: String,
}

/// A throwaway request: the first one a process serves pays one-off costs
/// (page faults on the weights, allocations) that no state should carry.
async fn warm_up_process(client: &OpenAiClient, plan: &Plan<'_>) -> anyhow::Result<()> {
    let body = plan.body(json!([{"role": "user", "content": "Hello"}]), 1);
    client
        .chat_stream(None, body)
        .await
        .context("the server's first request failed")?;
    Ok(())
}

/// The unmeasured turn that leaves the agent's history cached; its reply
/// becomes part of the next turn, as in a real conversation.
async fn build_history(
    client: &OpenAiClient,
    plan: &Plan<'_>,
    probe: &Probe,
) -> anyhow::Result<String> {
    let body = plan.body(probe.history_messages(), WARMUP_REPLY_TOKENS);
    let turn = client
        .chat_stream(Some(&probe.agent), body)
        .await
        .with_context(|| format!("history turn of agent {}", probe.agent))?;
    Ok(turn.text)
}

/// Wait `--pause` before a measured request: the same for every state, so
/// none is timed while the server still persists the turn before it.
async fn quiet(plan: &Plan<'_>) {
    tokio::time::sleep(*plan.args.pause).await;
}

async fn measure_next_turn(
    client: &OpenAiClient,
    plan: &Plan<'_>,
    probe: &Probe,
    reply: &str,
    run: usize,
) -> anyhow::Result<Sample> {
    let body = plan.body(probe.next_turn_messages(reply), plan.args.max_tokens);
    quiet(plan).await;
    let turn = client
        .chat_stream(Some(&probe.agent), body)
        .await
        .with_context(|| format!("measured turn of agent {}", probe.agent))?;
    Ok(Sample::new(run, &turn))
}

/// Cold, hot and warm for every context and run, interleaved so that slow
/// drifts of the machine hit every state alike. Also builds the histories
/// the disk state measures after the restart.
async fn measure_live_states(
    client: &OpenAiClient,
    plan: &Plan<'_>,
    results: &mut Results,
) -> anyhow::Result<Vec<History>> {
    let mut histories = Vec::new();
    for (ci, &tokens) in plan.args.contexts.iter().enumerate() {
        for run in 0..plan.args.runs {
            eprintln!("context {tokens}: run {}/{}", run + 1, plan.args.runs);
            let cold = plan.probe(ci, State::Cold, run);
            let body = plan.body(cold.cold_messages(), plan.args.max_tokens);
            quiet(plan).await;
            let turn = client
                .chat_stream(Some(&cold.agent), body)
                .await
                .with_context(|| format!("cold turn of agent {}", cold.agent))?;
            results.add(tokens, State::Cold, Sample::new(run, &turn));

            let hot = plan.probe(ci, State::Hot, run);
            let reply = build_history(client, plan, &hot).await?;
            let sample = measure_next_turn(client, plan, &hot, &reply, run).await?;
            results.add(tokens, State::Hot, sample);

            if !results.not_measured.contains_key(&State::Warm) {
                measure_warm(client, plan, ci, run, results).await?;
            }
            if !results.not_measured.contains_key(&State::Disk) {
                let probe = plan.probe(ci, State::Disk, run);
                let reply = build_history(client, plan, &probe).await?;
                histories.push(History {
                    context: tokens,
                    run,
                    probe,
                    reply,
                });
            }
        }
    }
    Ok(histories)
}

/// Build the history, evict it to RAM, then time the next turn. A server
/// without the evict endpoint marks the state n/a for the whole benchmark.
async fn measure_warm(
    client: &OpenAiClient,
    plan: &Plan<'_>,
    context_index: usize,
    run: usize,
    results: &mut Results,
) -> anyhow::Result<()> {
    let probe = plan.probe(context_index, State::Warm, run);
    let reply = build_history(client, plan, &probe).await?;
    match client.evict(&probe.agent, "warm").await? {
        Eviction::Unsupported => {
            let why = "the server has no POST /v1/agents/{id}/evict".to_owned();
            results.not_measured.insert(State::Warm, why);
            return Ok(());
        }
        Eviction::Moved(tier) if tier != "warm" => {
            eprintln!(
                "warning: agent {} is {tier} after eviction to warm",
                probe.agent
            );
        }
        Eviction::Moved(_) => {}
    }
    let sample = measure_next_turn(client, plan, &probe, &reply, run).await?;
    results.add(plan.args.contexts[context_index], State::Warm, sample);
    Ok(())
}

/// Restart the spawned server (it persists agents on SIGTERM), then time
/// each history's next turn: nothing of them is left in the engine or RAM.
async fn measure_disk(
    target: &mut BenchServer,
    plan: &Plan<'_>,
    histories: &[History],
    results: &mut Results,
) -> anyhow::Result<()> {
    let BenchServer::Spawned(server) = target else {
        return Ok(());
    };
    if histories.is_empty() {
        return Ok(());
    }
    eprintln!("restarting the server for the disk state");
    server.restart().await?;
    warm_up_process(server.client(), plan).await?;
    for h in histories {
        let sample = measure_next_turn(server.client(), plan, &h.probe, &h.reply, h.run).await?;
        results.add(h.context, State::Disk, sample);
    }
    Ok(())
}

fn print_header(
    args: &BenchTtftArgs,
    target: &BenchServer,
    model: Option<&ModelInfo>,
    served: &str,
) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("## semantic bench ttft\n");
    println!("machine: {} ({cores} cores)", super::bench::cpu_model());
    let local = model.map(|info| info.path.display().to_string());
    match target {
        BenchServer::Spawned(server) => {
            println!("model:   {}", local.unwrap_or_default());
            println!("kv type: {}", args.target.kv_type);
            println!(
                "server:  {} (spawned `semantic serve`, restarted for the disk state)",
                server.client().base_url()
            );
        }
        BenchServer::External { client, .. } => {
            let cut = local.map_or_else(
                || format!("about {CHARS_PER_TOKEN} characters per token (no local --model)"),
                |path| format!("the tokenizer of {path}"),
            );
            println!("model:   {served} (served); contexts cut with {cut}");
            println!("kv type: the server's own (--kv-type applies to a spawned server)");
            println!("server:  {} (external)", client.base_url());
        }
    }
    println!(
        "runs:    {} per state and context, greedy, {} token(s) per measured turn, each after {} quiet",
        args.runs, args.max_tokens, args.pause
    );
}

fn print_tables(args: &BenchTtftArgs, results: &Results) {
    for &tokens in &args.contexts {
        println!("\n### context of {tokens} corpus tokens\n");
        println!("| state | min ms | median ms | max ms | vs cold | cached tokens | prompt tokens | cache source | runs |");
        println!("|---|---:|---:|---:|---:|---:|---:|---|---:|");
        let cold = results.samples.get(&(tokens, State::Cold));
        for state in STATES {
            let samples = results.samples.get(&(tokens, state));
            let reason = results.not_measured.get(&state);
            println!("{}", row(state, samples, cold, reason));
        }
        for state in [State::Hot, State::Warm, State::Disk] {
            let samples = results.samples.get(&(tokens, state));
            if samples.and_then(|s| median_cached(s)) == Some(0) {
                println!(
                    "\nnote: the {} state reused nothing (the server reports 0 cached tokens)",
                    state.name()
                );
            }
        }
    }
    println!(
        "\nTTFT: request sent until the first streamed chunk with text. \
         vs cold: median over runs of TTFT / the same run's cold TTFT. \
         cached tokens, prompt tokens: medians of the server's usage."
    );
}

fn row(
    state: State,
    samples: Option<&Vec<Sample>>,
    cold: Option<&Vec<Sample>>,
    reason: Option<&String>,
) -> String {
    let Some(samples) = samples.filter(|s| !s.is_empty()) else {
        let why = reason.map_or("not measured", String::as_str);
        return format!(
            "| {} | n/a | n/a | n/a | n/a | n/a | n/a | n/a: {why} | 0 |",
            state.name()
        );
    };
    let mut ttft: Vec<f64> = samples.iter().map(|s| s.ttft_ms).collect();
    ttft.sort_by(f64::total_cmp);
    let ratio = cold.map(|c| ratios(samples, c)).and_then(|r| median(&r));
    let prompt = median_u32(samples.iter().map(|s| s.prompt_tokens).collect());
    format!(
        "| {} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {} |",
        state.name(),
        ttft[0],
        median(&ttft).unwrap_or(f64::NAN),
        ttft[ttft.len() - 1],
        ratio.map_or("-".to_owned(), |r| format!("{r:.3}")),
        median_cached(samples).map_or("-".to_owned(), |c| c.to_string()),
        prompt.map_or("-".to_owned(), |p| p.to_string()),
        most_common(samples.iter().filter_map(|s| s.cache_source.as_deref())),
        samples.len(),
    )
}

/// Each run's TTFT over the same run's cold TTFT, sorted.
fn ratios(samples: &[Sample], cold: &[Sample]) -> Vec<f64> {
    let mut out: Vec<f64> = samples
        .iter()
        .filter_map(|s| {
            let c = cold.iter().find(|c| c.run == s.run)?;
            (c.ttft_ms > 0.0).then(|| s.ttft_ms / c.ttft_ms)
        })
        .collect();
    out.sort_by(f64::total_cmp);
    out
}

/// The median of sorted values (mean of the middle two for an even count).
fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

fn median_u32(mut values: Vec<u32>) -> Option<u32> {
    values.sort_unstable();
    values.get(values.len().checked_sub(1)? / 2).copied()
}

/// Median cached tokens, if the server reports them at all.
fn median_cached(samples: &[Sample]) -> Option<u32> {
    median_u32(samples.iter().filter_map(|s| s.cached_tokens).collect())
}

fn most_common<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map_or("-".to_owned(), |(v, _)| v.to_owned())
}

/// Which model the capacity table describes: with a foreign server, the
/// local one may not be the one it serves.
fn model_label(args: &BenchTtftArgs, model: &LoadedModel) -> String {
    let id = &model.info().id;
    match args.target.base_url {
        Some(_) => format!("local model {id}, not necessarily the served one"),
        None => id.clone(),
    }
}

/// How many agents of [`CAPACITY_AGENT_TOKENS`] fit in a 1 GiB KV budget
/// with each cache type: the argument for quantized KV in one table.
fn print_capacity(info: &ModelInfo, label: &str) {
    let g = info.kv_geometry;
    println!("\n### agents of {CAPACITY_AGENT_TOKENS} tokens in a 1 GiB KV budget ({label})\n");
    println!(
        "model geometry: {} layers x {} KV heads x {} dims\n",
        g.n_layer, g.n_head_kv, g.head_dim
    );
    println!("| kv type | bytes per token | MiB per agent | agents in 1 GiB |");
    println!("|---|---:|---:|---:|");
    let agents =
        |kv: KvType| CAPACITY_BUDGET_BYTES / (CAPACITY_AGENT_TOKENS * g.bytes_per_token(kv)).max(1);
    for kv in KvType::ALL {
        let per_token = g.bytes_per_token(kv);
        let mib = (CAPACITY_AGENT_TOKENS * per_token) as f64 / (1u64 << 20) as f64;
        println!("| {kv} | {per_token} | {mib:.1} | {} |", agents(kv));
    }
    let f16 = agents(KvType::F16);
    if f16 > 0 {
        let ratio = agents(KvType::Q4_0) as f64 / f16 as f64;
        println!("\nq4_0 / f16: {ratio:.2}x as many agents");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::BenchTarget;

    fn sample(run: usize, ttft_ms: f64, cached: Option<u32>, source: &str) -> Sample {
        Sample {
            run,
            ttft_ms,
            prompt_tokens: 100,
            cached_tokens: cached,
            cache_source: Some(source.to_owned()),
        }
    }

    #[test]
    fn medians_and_ratios_pair_runs() {
        assert_eq!(median(&[1.0, 2.0, 10.0]), Some(2.0));
        assert_eq!(median(&[1.0, 3.0]), Some(2.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median_u32(vec![5, 1, 3]), Some(3));
        assert_eq!(median_u32(vec![]), None);
        let cold = [
            sample(0, 100.0, Some(0), "cold"),
            sample(1, 200.0, Some(0), "cold"),
        ];
        let hot = [
            sample(1, 20.0, Some(90), "hot"),
            sample(0, 5.0, Some(80), "hot"),
        ];
        assert_eq!(ratios(&hot, &cold), vec![0.05, 0.1]);
    }

    #[test]
    fn agents_prompts_share_no_reusable_prefix() {
        let args = BenchTtftArgs {
            target: BenchTarget {
                base_url: None,
                api_key: None,
                served_model: None,
                model: None,
                corpus: None,
                kv_type: KvType::F16,
            },
            contexts: vec![64, 128],
            runs: 12,
            max_tokens: 1,
            pause: std::time::Duration::ZERO.into(),
        };
        let texts = ContextTexts {
            text: "The quick brown fox jumps over the lazy dog. ".repeat(100),
            tokens: None,
        };
        let plan = Plan {
            args: &args,
            texts: &texts,
            served: "default".into(),
            nonce: "n".into(),
        };
        let mut prompts = Vec::new();
        for ci in 0..2 {
            for state in STATES {
                for run in 0..args.runs {
                    prompts.push(plan.probe(ci, state, run).system());
                }
            }
        }
        for (i, a) in prompts.iter().enumerate() {
            for b in &prompts[i + 1..] {
                let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
                // At most `Session 1` and a digit: a few tokens after the template's.
                assert!(common <= 10, "{a} / {b}");
            }
        }
    }

    #[test]
    fn rows_show_measurements_or_why_not() {
        let cold = vec![sample(0, 100.0, Some(0), "cold")];
        let hot = vec![sample(0, 10.0, Some(95), "hot")];
        let line = row(State::Hot, Some(&hot), Some(&cold), None);
        assert_eq!(
            line,
            "| hot | 10.0 | 10.0 | 10.0 | 0.100 | 95 | 100 | hot | 1 |"
        );
        let why = "the server has no evict".to_owned();
        let line = row(State::Warm, None, Some(&cold), Some(&why));
        assert!(
            line.starts_with("| warm | n/a") && line.contains(&why),
            "{line}"
        );
    }
}
