//! What every handler shares: the engine and facts fixed at start-up.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use semantic_engine::EngineHandle;

/// Shared, read-only server state (the engine handle is itself a cheap clone).
pub struct AppState {
    pub engine: EngineHandle,
    /// The id clients may use in `model` besides `"default"`.
    pub model_id: String,
    /// Unix seconds reported as the model's `created` (the file's mtime).
    pub model_created: u64,
    /// Identifies the serving configuration in `system_fingerprint`, so a
    /// client can tell when answers may differ for the same seed.
    pub fingerprint: String,
    pub max_body_bytes: usize,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn new(engine: EngineHandle, max_body_bytes: usize) -> Self {
        let info = engine.model().info();
        let model_id = info.id.clone();
        let model_created = std::fs::metadata(&info.path)
            .and_then(|m| m.modified())
            .map(unix_seconds)
            .unwrap_or_else(|_| now_unix());
        let fingerprint = format!(
            "fp_semantic_{}_{}",
            env!("CARGO_PKG_VERSION"),
            engine.config().kv_type
        );
        Self {
            engine,
            model_id,
            model_created,
            fingerprint,
            max_body_bytes,
        }
    }
}

/// Seconds since the Unix epoch of `t` (0 before 1970).
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_unix() -> u64 {
    unix_seconds(SystemTime::now())
}
