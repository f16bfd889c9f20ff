//! Command-line interface definition.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::byte_size::ByteSize;
use crate::engine_options::{EngineOptions, MaxTokensOptions, ReplyDefaultsOptions};
use crate::gateway_options::GatewayOptions;
use crate::logging::LogOptions;

/// An LLM inference server that keeps every agent's KV cache.
#[derive(Parser, Debug)]
#[command(name = "semantic", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogOptions,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Stream a chat reply to one prompt to stdout.
    Generate(GenerateArgs),
    /// Serve the HTTP API (OpenAI- and Anthropic-compatible).
    Serve(ServeArgs),
    /// Print the effective `serve` configuration and where each setting
    /// came from (flag, env, file or default), then exit.
    Config(ServeArgs),
    /// Run a benchmark.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print version, git commit, llama.cpp build and CPU features.
    Version,
    /// Inspect and clean persisted agent KV files on disk (no server needed).
    Cache(CacheArgs),
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The user message.
    #[arg(long)]
    pub prompt: String,
    /// An optional system message.
    #[arg(long)]
    pub system: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: u32,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Keep only the k most likely tokens (0 disables).
    #[arg(long, default_value_t = 40)]
    pub top_k: u32,
    /// Fixed seed for reproducible sampling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop before this string (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    #[command(flatten)]
    pub engine: EngineOptions,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// TOML file of settings (keys are the long flag names, e.g.
    /// `kv_budget = "2GiB"`); flags and SEMANTIC_* env vars override it.
    #[arg(long, env = "SEMANTIC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on. Loopback by default; any other address needs an
    /// API key (or --allow-unauthenticated).
    #[arg(long, default_value = "127.0.0.1", env = "SEMANTIC_HOST")]
    pub host: std::net::IpAddr,
    /// TCP port to listen on.
    #[arg(long, default_value_t = 8080, env = "SEMANTIC_PORT")]
    pub port: u16,
    /// Where agents' KV caches are persisted (default: the user's data directory).
    #[arg(long, env = "SEMANTIC_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// On SIGTERM/SIGINT, how long requests in flight may run on before they
    /// are cancelled (e.g. `30s`, `2m`). Caches are persisted either way.
    #[arg(long, default_value = "30s", env = "SEMANTIC_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: humantime::Duration,
    /// `/health/live` fails once the engine thread has been stuck this long.
    #[arg(long, default_value = "60s", env = "SEMANTIC_ENGINE_STALL_TIMEOUT")]
    pub engine_stall_timeout: humantime::Duration,
    /// Most bytes of stored responses (`/v1/responses` with `store: true`)
    /// kept in `<cache-dir>/responses.redb`; the oldest go first past it.
    #[arg(long, default_value = "1GiB", env = "SEMANTIC_RESPONSES_MAX_BYTES")]
    pub responses_max_bytes: crate::byte_size::ByteSize,
    /// How long a stored response is kept (OpenAI keeps them 30 days).
    #[arg(long, default_value = "30days", env = "SEMANTIC_RESPONSES_TTL")]
    pub responses_ttl: humantime::Duration,
    #[command(flatten)]
    pub engine: EngineOptions,
    #[command(flatten)]
    pub max_tokens: MaxTokensOptions,
    #[command(flatten)]
    pub reply_defaults: ReplyDefaultsOptions,
    #[command(flatten)]
    pub trace: TraceArgs,
    #[command(flatten)]
    pub gateway: GatewayOptions,
}

/// OpenTelemetry trace export; off unless an endpoint is given.
#[derive(Args, Debug, Clone, Default)]
pub struct TraceArgs {
    /// Export request traces over OTLP to this collector (e.g.
    /// http://127.0.0.1:4318 for HTTP, http://127.0.0.1:4317 for gRPC).
    /// Falls back to OTEL_EXPORTER_OTLP_ENDPOINT; neither set: no traces.
    #[arg(long, env = "SEMANTIC_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// OTLP transport: protobuf over HTTP, or gRPC.
    #[arg(long, value_enum, default_value_t = OtlpProtocol::Http, env = "SEMANTIC_OTLP_PROTOCOL")]
    pub otlp_protocol: OtlpProtocol,
    /// Fraction of new traces exported, 0 to 1; a caller's `traceparent`
    /// decides for its own trace.
    #[arg(long, default_value_t = 1.0, env = "SEMANTIC_TRACE_SAMPLE_RATIO")]
    pub trace_sample_ratio: f64,
}

#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/HTTP with protobuf bodies (collector port 4318).
    #[default]
    #[value(alias = "http/protobuf")]
    Http,
    /// OTLP/gRPC (collector port 4317).
    Grpc,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Prefill and decode throughput of the engine next to a bare llama.cpp loop.
    Engine(BenchEngineArgs),
    /// First-token time of an agent's next turn: cold, hot, warm (RAM) and
    /// disk, over HTTP, against a spawned `semantic serve` or any
    /// OpenAI-compatible server (--base-url).
    Ttft(BenchTtftArgs),
    /// Many agents in multi-turn conversations at once for a fixed time:
    /// status counts and p50/p95/p99 first-token and request latency.
    Load(BenchLoadArgs),
    /// N agents take T turns of growing conversations in round-robin order,
    /// C at a time, optionally restarting the server between rounds:
    /// first-token median/p95 and wall time per round, and the cache
    /// sources our server reports.
    Rotation(BenchRotationArgs),
    /// A bounded soak on loopback: a spawned server under a mixed load
    /// (returning and new agents, cancellations, bursts past the queue,
    /// evictions to disk and back) with resident memory, open files, KV
    /// pool, tiers, disk and 5xx sampled over time; fails on any 5xx, a
    /// leaked KV block, a disk over budget or memory growth past 5 %.
    Soak(BenchSoakArgs),
    /// What quantized KV costs in quality: perplexity of corpus text and
    /// mean KL divergence of next-token distributions from f16 KV, per KV
    /// type, model and context length, through our llama.cpp contexts
    /// (llama-perplexity's method: chunks of the context length, the
    /// second half of each scored).
    Quality(BenchQualityArgs),
}

#[derive(Args, Debug)]
pub struct BenchQualityArgs {
    /// GGUF model (repeat for several; default: the default model and, when
    /// it is beside it, Gemma 3 270M `gemma-3-270m-q4_k_m.gguf`).
    #[arg(long = "model")]
    pub models: Vec<PathBuf>,
    /// Context lengths in tokens (chunk sizes), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "512,2048,4096")]
    pub contexts: Vec<u32>,
    /// KV types to measure, comma-separated; f16 is always the reference.
    #[arg(long, value_delimiter = ',', default_value = "f16,q8_0,q4_0")]
    pub kv_types: Vec<semantic_domain::KvType>,
    /// Corpus tokens evaluated per model and context length, in whole
    /// chunks (4096: 8 chunks of 512, 2 of 2048, 1 of 4096); about half of
    /// them are scored. At least the longest context.
    #[arg(long, default_value_t = 4096)]
    pub tokens: usize,
    /// Tokens per llama_decode; llama.cpp holds this many rows of logits
    /// per context (1 MiB a row for Gemma 3's 262K vocabulary).
    #[arg(long, default_value_t = 256)]
    pub batch_tokens: u32,
    /// CPU threads for llama.cpp (default: all cores).
    #[arg(long)]
    pub threads: Option<u32>,
    /// A folder of .txt files to evaluate instead of the built-in generated
    /// text.
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// Write the evaluated text to this file (for llama-perplexity -f).
    #[arg(long, value_name = "FILE")]
    pub dump_text: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BenchSoakArgs {
    /// GGUF model the spawned server loads.
    #[arg(long, env = "SEMANTIC_MODEL")]
    pub model: Option<PathBuf>,
    /// A folder of .txt files to cut prompts from instead of the built-in
    /// generated text.
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// How long the load runs (e.g. 30m; 1m for a smoke run).
    #[arg(long, default_value = "30m")]
    pub duration: humantime::Duration,
    /// Time between samples (memory growth is the trend through them).
    #[arg(long, default_value = "1m")]
    pub sample_every: humantime::Duration,
    /// Memory growth is the least-squares trend of the samples from this
    /// on (allocator arenas and tiers fill first); a run with fewer than
    /// three samples after it reports no growth.
    #[arg(long, default_value = "5m")]
    pub warm_up: humantime::Duration,
    /// Time between bursts of ten times --queue-capacity requests at once.
    #[arg(long, default_value = "1m")]
    pub burst_every: humantime::Duration,
    /// Agents returning turn after turn.
    #[arg(long, default_value_t = 6)]
    pub agents: usize,
    /// Longest reply.
    #[arg(long, default_value_t = 24)]
    pub max_tokens: u32,
    /// The spawned server's --queue-capacity.
    #[arg(long, default_value_t = 8)]
    pub queue_capacity: usize,
    /// The spawned server's --max-sequences (few, so agents leave the engine).
    #[arg(long, default_value_t = 4)]
    pub max_sequences: u32,
    /// The spawned server's --context-tokens.
    #[arg(long, default_value_t = 4096)]
    pub context_tokens: u32,
    /// The spawned server's --warm-budget (small, so agents go to disk).
    #[arg(long, default_value = "32MiB")]
    pub warm_budget: ByteSize,
    /// The spawned server's --disk-budget (small, so files are deleted).
    #[arg(long, default_value = "96MiB")]
    pub disk_budget: ByteSize,
    /// KV cache type of the spawned server.
    #[arg(long, default_value = "f16")]
    pub kv_type: semantic_domain::KvType,
}

#[derive(Args, Debug)]
pub struct BenchRotationArgs {
    #[command(flatten)]
    pub target: BenchTarget,
    /// Agents, each with its own system prompt.
    #[arg(long, default_value_t = 12)]
    pub agents: usize,
    /// Turns per agent, taken in rounds: every agent's first turn, then
    /// every agent's second, and so on.
    #[arg(long, default_value_t = 3)]
    pub turns: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// Characters of corpus text in each agent's system prompt (about four
    /// per token).
    #[arg(long, default_value_t = 8000)]
    pub system_chars: usize,
    /// Longest reply of each turn.
    #[arg(long, default_value_t = 16)]
    pub max_tokens: u32,
    /// The spawned server's `--kv-budget` (e.g. 192MiB), to put it under
    /// memory pressure.
    #[arg(long)]
    pub kv_budget: Option<String>,
    /// The spawned server's `--warm-budget` (e.g. 64MiB).
    #[arg(long)]
    pub warm_budget: Option<String>,
    /// Another `semantic serve` argument for the spawned server (repeat it),
    /// e.g. `--serve-arg=--max-sequences=4`.
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,
    /// Restart the server between rounds: a spawned one by SIGTERM (it
    /// persists every agent) and a fresh start; a --base-url one by
    /// --restart-command.
    #[arg(long)]
    pub restart_between: bool,
    /// With --base-url and --restart-between: a shell command that restarts
    /// that server; the bench then waits until `GET /v1/models` answers.
    #[arg(long)]
    pub restart_command: Option<String>,
    /// Longest wait for one request; a request without an answer by then
    /// fails the run (a server that hangs must not hang the bench).
    #[arg(long, default_value = "600s")]
    pub request_timeout: humantime::Duration,
}

/// The server an HTTP benchmark measures, and the text it sends: a spawned
/// `semantic serve`, or any OpenAI-compatible server at --base-url.
#[derive(Args, Debug)]
pub struct BenchTarget {
    /// Measure this OpenAI-compatible server (http://host:port, with or
    /// without /v1) instead of spawning `semantic serve`. States only a
    /// spawned server can be put in (disk, after a restart) are reported n/a.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Sent as `Authorization: Bearer` to a --base-url server.
    #[arg(long, env = "SEMANTIC_BENCH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Model name sent in requests (default: "default", or the first id of
    /// GET /v1/models of a --base-url server).
    #[arg(long)]
    pub served_model: Option<String>,
    /// GGUF model: served by the spawned server; `bench ttft` also uses it
    /// to cut exact token counts of corpus text and size the capacity table.
    #[arg(long, env = "SEMANTIC_MODEL")]
    pub model: Option<PathBuf>,
    /// A folder of .txt files to cut prompts from instead of the built-in
    /// generated text.
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// KV cache type of the spawned server: f16, q8_0 or q4_0.
    #[arg(long, default_value = "f16")]
    pub kv_type: semantic_domain::KvType,
}

#[derive(Args, Debug)]
pub struct BenchLoadArgs {
    #[command(flatten)]
    pub target: BenchTarget,
    /// Agents talking at once.
    #[arg(long, default_value_t = 10)]
    pub agents: usize,
    /// How long to keep the load up (e.g. 60s).
    #[arg(long, default_value = "60s")]
    pub duration: humantime::Duration,
    /// Longest reply; requests alternate between a quarter, half and all of it.
    #[arg(long, default_value_t = 32)]
    pub max_tokens: u32,
}

#[derive(Args, Debug)]
pub struct BenchEngineArgs {
    /// A folder of .txt files to cut prompts from instead of the built-in
    /// generated text.
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// Runs per measurement (the table shows medians).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Tokens generated per sequence in the decode runs.
    #[arg(long, default_value_t = 64)]
    pub decode_tokens: usize,
    #[command(flatten)]
    pub engine: EngineOptions,
}

#[derive(Args, Debug)]
pub struct BenchTtftArgs {
    #[command(flatten)]
    pub target: BenchTarget,
    /// Context sizes in tokens of corpus text, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "512,1024,2048,4096")]
    pub contexts: Vec<u32>,
    /// Runs per state and context (each with its own agent and text); the
    /// table shows min, median and max.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Tokens generated by each measured request.
    #[arg(long, default_value_t = 1)]
    pub max_tokens: u32,
    /// Quiet time before each measured request (every state alike), so that
    /// it does not share the CPU with background work the request before it
    /// left behind, such as persisting that turn (`bench load` measures
    /// turns under load). `0s` measures back to back.
    #[arg(long, default_value = "2s")]
    pub pause: humantime::Duration,
}

#[derive(Args, Debug)]
pub struct CacheArgs {
    /// Where agents' KV caches are persisted (default: the user's data directory, as for `serve`).
    #[arg(long, global = true, env = "SEMANTIC_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Only this tenant's agents (default: every tenant's). A key without
    /// `tenant=` in the key file is tenant `key-<16 hex digits>`; a server
    /// without keys, and files written before tenants, use `default`.
    #[arg(long, global = true)]
    pub tenant: Option<String>,
    #[command(subcommand)]
    pub command: CacheCommand,
}

/// `semantic cache` subcommands. They read the disk tier only: a running
/// server may also hold agents in RAM or in the engine.
#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// List cached agents, most recently used first.
    Ls,
    /// Show every metadata field of an agent's file(s), under each model that has one.
    Inspect {
        /// The agent id.
        agent: String,
    },
    /// Fully check every agent file (header, size, checksum); exits non-zero if any is corrupt.
    Verify,
    /// Delete an agent's files under every model, or every agent file with --all.
    /// A running server keeps its in-memory copies and may write them again.
    Rm(CacheRmArgs),
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["agent", "all"])))]
pub struct CacheRmArgs {
    /// The agent id.
    pub agent: Option<String>,
    /// Remove every agent file under every model.
    #[arg(long)]
    pub all: bool,
}
