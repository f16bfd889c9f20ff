//! One module per subcommand.

mod bench;
mod bench_load;
mod bench_quality;
mod bench_rotation;
mod bench_server;
mod bench_soak;
mod bench_ttft;
mod cache;
mod config;
mod generate;
mod serve;
mod shutdown_signals;
mod soak_probe;
mod spawned_server;
mod version;

use anyhow::Context;
use semantic_engine::{EngineConfig, EngineHandle};

use crate::cli::{BenchCommand, Command};
use crate::config_file::Sources;
use crate::progress::LoadProgress;

/// The multi-threaded runtime the async commands (serve, the HTTP benches)
/// run on.
fn async_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn run(command: Command, sources: &Sources) -> anyhow::Result<()> {
    match command {
        Command::Generate(args) => generate::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Config(args) => config::run(args, sources),
        Command::Bench(BenchCommand::Engine(args)) => bench::run(args),
        Command::Bench(BenchCommand::Ttft(args)) => bench_ttft::run(args),
        Command::Bench(BenchCommand::Load(args)) => bench_load::run(args),
        Command::Bench(BenchCommand::Rotation(args)) => bench_rotation::run(args),
        Command::Bench(BenchCommand::Soak(args)) => bench_soak::run(args),
        Command::Bench(BenchCommand::Quality(args)) => bench_quality::run(args),
        Command::Version => version::run(),
        Command::Cache(args) => cache::run(args),
    }
}

/// Load the model with a progress bar and start the engine thread.
pub fn start_engine(config: EngineConfig) -> anyhow::Result<EngineHandle> {
    start_engine_with(config, None)
}

/// Like [`start_engine`], with agents' caches persisted through `persistence`.
pub fn start_engine_with(
    config: EngineConfig,
    persistence: Option<std::sync::Arc<dyn semantic_domain::persistence::AgentPersistence>>,
) -> anyhow::Result<EngineHandle> {
    let name = config
        .model_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let progress = LoadProgress::new(&name);
    let started = std::time::Instant::now();
    let engine = EngineHandle::start_with(config, persistence, progress.callback())
        .with_context(|| format!("cannot start the engine with model {name}"))?;
    progress.finish();
    tracing::info!(
        model = %engine.model().info().id,
        seconds = started.elapsed().as_secs_f64(),
        context_window = engine.context_window(),
        gpu_layers = engine.model().info().offload.gpu_layers,
        compute_backend = %engine.model().info().offload.backend,
        weight_repack = ?engine.config().weight_repack,
        exact_batching = engine.model().info().offload.exactness_promised(),
        "model loaded"
    );
    Ok(engine)
}
