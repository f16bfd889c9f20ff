//! `semantic`: an LLM inference server with persistent per-agent KV cache.

mod byte_size;
mod cli;
mod commands;
mod engine_options;
mod gateway_options;
mod logging;
mod model_path;
mod openai_client;
mod progress;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_level.as_deref());
    match commands::run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
