//! `semantic`: an LLM inference server with persistent per-agent KV cache.

mod byte_size;
mod cli;
mod commands;
mod engine_options;
mod gateway_options;
mod logging;
mod model_path;
mod openai_client;
mod otel;
mod progress;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let traces = match &cli.command {
        cli::Command::Serve(args) => otel::TraceExport::start(&args.trace),
        _ => Ok(None),
    };
    let (_export, trace_layer) = match traces {
        Ok(Some((export, layer))) => (Some(export), Some(layer)),
        Ok(None) => (None, None),
        Err(err) => {
            eprintln!("error: {err:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    logging::init(cli.log_level.as_deref(), trace_layer);
    match commands::run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
