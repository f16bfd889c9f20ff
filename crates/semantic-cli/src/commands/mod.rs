//! One module per subcommand.

mod bench;
mod generate;
mod serve;
mod version;

use anyhow::Context;
use semantic_engine::{EngineConfig, EngineHandle};

use crate::cli::{BenchCommand, Command};
use crate::progress::LoadProgress;

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Generate(args) => generate::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Bench(BenchCommand::Engine(args)) => bench::run(args),
        Command::Version => version::run(),
    }
}

/// Load the model with a progress bar and start the engine thread.
pub fn start_engine(config: EngineConfig) -> anyhow::Result<EngineHandle> {
    let name = config
        .model_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let progress = LoadProgress::new(&name);
    let started = std::time::Instant::now();
    let engine = EngineHandle::start(config, progress.callback())
        .with_context(|| format!("cannot start the engine with model {name}"))?;
    progress.finish();
    tracing::info!(
        model = %engine.model().info().id,
        seconds = started.elapsed().as_secs_f64(),
        context_window = engine.context_window(),
        "model loaded"
    );
    Ok(engine)
}
