//! Log set-up. Logs go to stderr (stdout carries only command output):
//! human-readable on a terminal, JSON lines otherwise (what log shippers
//! parse), or as `--log-format` forces. `--log-file` adds JSON lines in a
//! rotated file with a retention count. Span fields (the request and
//! correlation ids of an HTTP request) appear on every line inside a span.
//! Prompts, completions and keys are never logged.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer, Registry};

use crate::otel::BoxedLayer;

/// llama.cpp logs every tensor at info level; keep it at warnings by default.
const DEFAULT_FILTER: &str = "info,llama_cpp_2=warn,llama-cpp-2=warn";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Text on a terminal, JSON otherwise.
    Auto,
    Json,
    Text,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogRotation {
    Daily,
    Hourly,
    Never,
}

/// Logging flags, accepted by every subcommand.
#[derive(Args, Debug, Clone)]
pub struct LogOptions {
    /// Log filter (tracing EnvFilter syntax), e.g. `debug` or `semantic_engine=debug`.
    #[arg(long, global = true, env = "SEMANTIC_LOG")]
    pub log_level: Option<String>,
    /// Log line format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        env = "SEMANTIC_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// Also write JSON log lines to this file (rotated; see --log-rotation).
    #[arg(long, global = true, env = "SEMANTIC_LOG_FILE")]
    pub log_file: Option<PathBuf>,
    /// When to start a new --log-file (the date or hour is appended to its name).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "daily",
        env = "SEMANTIC_LOG_ROTATION"
    )]
    pub log_rotation: LogRotation,
    /// Rotated --log-file files to keep; older ones are deleted.
    #[arg(
        long,
        global = true,
        default_value_t = 7,
        env = "SEMANTIC_LOG_MAX_FILES"
    )]
    pub log_max_files: usize,
}

/// Keeps the file writer's background thread alive; drop it last.
pub struct LogGuard {
    _file_writer: Option<WorkerGuard>,
}

/// `traces`, when given, is a further layer with its own filter (trace
/// export), so the log filter never decides what is exported.
pub fn init(options: &LogOptions, traces: Option<BoxedLayer>) -> anyhow::Result<LogGuard> {
    let filter = match options.log_level.as_deref() {
        Some(level) => EnvFilter::try_new(level)
            .with_context(|| format!("invalid --log-level / SEMANTIC_LOG filter {level:?}"))?,
        None => EnvFilter::new(DEFAULT_FILTER),
    };
    let json = match options.log_format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let stderr = if json {
        json_layer().with_writer(std::io::stderr).boxed()
    } else {
        fmt::layer().with_writer(std::io::stderr).boxed()
    };
    let (file, guard) = match &options.log_file {
        Some(path) => {
            let appender = file_appender(path, options.log_rotation, options.log_max_files)?;
            let (writer, guard) = tracing_appender::non_blocking(appender);
            (Some(json_layer().with_writer(writer).boxed()), Some(guard))
        }
        None => (None, None),
    };
    // Ignored if a subscriber is already set (tests that call `init` twice).
    let _ = Registry::default()
        .with(traces)
        .with(stderr.and_then(file).with_filter(filter))
        .try_init();
    Ok(LogGuard {
        _file_writer: guard,
    })
}

/// One JSON object per line, event fields flattened, with the current span
/// and its parents (so request ids are on every line of a request).
fn json_layer<S>() -> fmt::Layer<S, fmt::format::JsonFields, fmt::format::Format<fmt::format::Json>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
}

fn file_appender(
    path: &Path,
    rotation: LogRotation,
    max_files: usize,
) -> anyhow::Result<RollingFileAppender> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("--log-file {} names no file", path.display()))?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the --log-file directory {}", dir.display()))?;
    let rotation = match rotation {
        LogRotation::Daily => Rotation::DAILY,
        LogRotation::Hourly => Rotation::HOURLY,
        LogRotation::Never => Rotation::NEVER,
    };
    RollingFileAppender::builder()
        .rotation(rotation)
        .filename_prefix(name.to_string_lossy().into_owned())
        .max_log_files(max_files.max(1))
        .build(dir)
        .with_context(|| format!("cannot open --log-file {}", path.display()))
}
