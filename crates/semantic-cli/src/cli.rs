//! Command-line interface definition.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::engine_options::EngineOptions;

/// An LLM inference server that keeps every agent's KV cache.
#[derive(Parser, Debug)]
#[command(name = "semantic", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `debug` or `semantic_engine=debug`.
    #[arg(long, global = true, env = "SEMANTIC_LOG")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Stream a chat reply to one prompt to stdout.
    Generate(GenerateArgs),
    /// Serve the OpenAI-compatible HTTP API.
    Serve(ServeArgs),
    /// Run a benchmark.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print version, git commit, llama.cpp build and CPU features.
    Version,
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
    /// Address to listen on. Loopback by default: there is no authentication yet.
    #[arg(long, default_value = "127.0.0.1", env = "SEMANTIC_HOST")]
    pub host: std::net::IpAddr,
    /// TCP port to listen on.
    #[arg(long, default_value_t = 8080, env = "SEMANTIC_PORT")]
    pub port: u16,
    /// Where agents' KV caches are persisted (default: the user's data directory).
    #[arg(long, env = "SEMANTIC_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineOptions,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Prefill and decode throughput of the engine next to a bare llama.cpp loop.
    Engine(BenchEngineArgs),
}

#[derive(Args, Debug)]
pub struct BenchEngineArgs {
    /// Directory of .txt files the prompts are cut from.
    #[arg(long, default_value = "../shared/corpus")]
    pub corpus: PathBuf,
    /// Runs per measurement (the table shows medians).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Tokens generated per sequence in the decode runs.
    #[arg(long, default_value_t = 64)]
    pub decode_tokens: usize,
    #[command(flatten)]
    pub engine: EngineOptions,
}
