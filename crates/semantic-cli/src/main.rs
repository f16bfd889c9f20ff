//! `semantic`: an LLM inference server with persistent per-agent KV cache.

mod byte_size;
mod cli;
mod commands;
mod config_file;
mod engine_options;
mod logging;
mod model_path;
mod openai_client;
mod progress;

fn main() -> std::process::ExitCode {
    let parsed = match config_file::parse(std::env::args_os().collect()) {
        Ok(parsed) => parsed,
        // clap's own errors (and --help, --version) print and exit as usual.
        Err(err) => match err.downcast::<clap::Error>() {
            Ok(clap_err) => clap_err.exit(),
            Err(err) => {
                eprintln!("error: {err:#}");
                return std::process::ExitCode::FAILURE;
            }
        },
    };
    let cli = parsed.cli;
    let _log_guard = match logging::init(&cli.log) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("error: {err:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match commands::run(cli.command, &parsed.sources) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
