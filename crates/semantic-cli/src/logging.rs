//! Log set-up: human-readable lines on stderr, so stdout carries only output.

use tracing_subscriber::EnvFilter;

/// llama.cpp logs every tensor at info level; keep it at warnings by default.
const DEFAULT_FILTER: &str = "info,llama_cpp_2=warn,llama-cpp-2=warn";

pub fn init(level: Option<&str>) {
    let filter = level
        .and_then(|l| EnvFilter::try_new(l).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
