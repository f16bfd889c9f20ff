//! The Prometheus recorder and `GET /metrics`.
//!
//! The `metrics` recorder is process-global, so it is installed once
//! (several servers in one process, as in tests, share it) and values only
//! ever grow or are overwritten: read deltas, not absolutes, across servers.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::SharedState;

/// Latency buckets, 1 ms to 60 s (every `*_seconds` histogram).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Tokens in one engine step, 1 to 512 (the default step budget).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// Histogram samples not yet scraped are folded into buckets this often,
/// so an unscraped server does not accumulate them.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
static COMMIT: OnceLock<String> = OnceLock::new();

/// Install the Prometheus recorder if no recorder is installed yet; later
/// calls return the same handle. `None` when another recorder was installed
/// first (then `/metrics` answers only what this module samples itself).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE.get_or_init(build).as_ref()
}

fn build() -> Option<PrometheusHandle> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(semantic_engine::telemetry::BATCH_SIZE.into()),
                BATCH_BUCKETS,
            )
        });
    let handle = match builder.and_then(PrometheusBuilder::install_recorder) {
        Ok(handle) => handle,
        Err(e) => {
            tracing::warn!(error = %e, "cannot install the Prometheus recorder; /metrics will be sparse");
            return None;
        }
    };
    // The server's own series exist from now on (the engine and the store
    // register theirs when they start, after this).
    super::http::register();
    crate::responses::turn::register();
    semantic_store::response_db::register();
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            upkeep.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread; scrapes still drain");
    }
    Some(handle)
}

/// The git commit reported by `semantic_build_info` (first call wins; the
/// binary sets it before building the router).
pub fn set_commit(commit: &str) {
    let _ = COMMIT.set(commit.to_owned());
}

/// Facts fixed for the life of a server, published when its router is built.
pub fn record_static(state: &SharedState) {
    install();
    let commit = COMMIT.get().map_or("unknown", String::as_str).to_owned();
    metrics::gauge!(
        "semantic_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "commit" => commit
    )
    .set(1.0);
    let engine = &state.engine;
    metrics::gauge!("semantic_request_queue_capacity").set(engine.config().queue_capacity as f64);
    metrics::gauge!("semantic_model_load_duration_seconds")
        .set(engine.model_load_duration().as_secs_f64());
}

/// `GET /metrics`: the Prometheus text format, after sampling what is read
/// rather than pushed (engine heartbeat age, resident memory).
pub async fn scrape(State(state): State<SharedState>) -> impl IntoResponse {
    metrics::gauge!("semantic_engine_last_step_age_seconds")
        .set(state.engine.heartbeat_age().as_secs_f64());
    if let Some(usage) = memory_stats::memory_stats() {
        metrics::gauge!("semantic_memory_resident_bytes").set(usage.physical_mem as f64);
    }
    let body = install().map(PrometheusHandle::render).unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
