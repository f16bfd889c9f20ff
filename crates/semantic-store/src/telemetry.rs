//! The store's metrics, through the `metrics` facade (a no-op until the
//! server installs its recorder). Meanings: `docs/observability.md`.

use std::time::Duration;

pub const PERSIST_DURATION: &str = "semantic_cache_persist_duration_seconds";
pub const LOAD_DURATION: &str = "semantic_cache_load_duration_seconds";
pub const CORRUPT: &str = "semantic_cache_corrupt_total";

/// One agent file written (or a failed attempt), start to rename.
pub fn persisted(took: Duration) {
    metrics::histogram!(PERSIST_DURATION).record(took.as_secs_f64());
}

/// One agent file read and verified, whatever it held.
pub fn loaded(took: Duration) {
    metrics::histogram!(LOAD_DURATION).record(took.as_secs_f64());
}

/// The store's series exist from start-up, for dashboards and alerts: the
/// corrupt-file counter at 0, the two histograms with no observations
/// (registered, so the Prometheus exporter renders them at 0).
pub fn register() {
    metrics::counter!(CORRUPT).increment(0);
    let _ = metrics::histogram!(PERSIST_DURATION);
    let _ = metrics::histogram!(LOAD_DURATION);
}

/// One unusable file moved to quarantine.
pub fn quarantined() {
    metrics::counter!(CORRUPT).increment(1);
}
