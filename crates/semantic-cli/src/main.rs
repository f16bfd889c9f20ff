//! `semantic`: an LLM inference server with persistent per-agent KV cache.

mod allocator;
mod byte_size;
mod cli;
mod commands;
mod config_file;
mod engine_options;
mod gateway_options;
mod logging;
mod model_path;
mod openai_client;
mod otel;
mod progress;

use std::process::ExitCode;

fn main() -> ExitCode {
    allocator::tune();
    let parsed = match config_file::parse(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        // clap's own errors (and --help, --version) print and exit as usual.
        Err(err) => match err.downcast::<clap::Error>() {
            Ok(clap_err) => clap_err.exit(),
            Err(err) => return fail(&err),
        },
    };
    let cli = parsed.cli;
    let traces = match &cli.command {
        cli::Command::Serve(args) => otel::TraceExport::start(&args.trace),
        _ => Ok(None),
    };
    let (_export, trace_layer) = match traces {
        Ok(Some((export, layer))) => (Some(export), Some(layer)),
        Ok(None) => (None, None),
        Err(err) => return fail(&err),
    };
    let _log_guard = match logging::init(&cli.log, trace_layer) {
        Ok(guard) => guard,
        Err(err) => return fail(&err),
    };
    match commands::run(cli.command, &parsed.sources) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {err:#}");
    ExitCode::FAILURE
}
