//! Log set-up: human-readable lines on stderr, so stdout carries only output.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::otel::BoxedLayer;

/// llama.cpp logs every tensor at info level; keep it at warnings by default.
const DEFAULT_FILTER: &str = "info,llama_cpp_2=warn,llama-cpp-2=warn";

/// `traces`, when given, is a further layer with its own filter (trace
/// export), so the log filter never decides what is exported.
pub fn init(level: Option<&str>, traces: Option<BoxedLayer>) {
    let filter = level
        .and_then(|l| EnvFilter::try_new(l).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let _ = tracing_subscriber::registry()
        .with(traces)
        .with(logs)
        .try_init();
}
