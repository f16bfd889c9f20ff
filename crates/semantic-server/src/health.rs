//! The three probes orchestrators use.
//!
//! - `/health/live`: the process answers and the engine is not stuck: its
//!   thread's heartbeat is younger than [`ProbeSettings::engine_stall`],
//!   and while requests wait, the scheduler admitted or computed something
//!   within that time. A scheduler that loops without progress does not
//!   recover by itself, and a restart loses nothing (every agent is on
//!   disk), so this is liveness' business: the orchestrator restarts it. A
//!   long model load or a long prefill step never fails it.
//! - `/health/ready`: send traffic here? No while starting, draining, with
//!   the KV pool nearly all pinned by running requests, the queue full, or
//!   the engine stalled (no new traffic while the restart is pending).
//! - `/health/startup`: the model is loaded and the disk tier indexed.
//!
//! Probes need no key, are never rate limited and log at debug only.
//!
//! [`ProbeSettings::engine_stall`]: crate::lifecycle::ProbeSettings

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::lifecycle::{Lifecycle, Phase};

/// `GET /health/live`.
pub async fn live(State(lifecycle): State<Arc<Lifecycle>>) -> Response {
    let Some(state) = lifecycle.state() else {
        return answer(true, json!({"status": "ok", "phase": "starting"}));
    };
    let stall = StallReading::of(&state.engine);
    let status = stall.status(lifecycle.probes.engine_stall);
    answer(
        status == "ok",
        json!({
            "status": status,
            "phase": lifecycle.phase().as_str(),
            "engine_heartbeat_age_seconds": stall.heartbeat_age.as_secs_f64(),
            "engine_waiting_without_progress_seconds":
                stall.waiting_without_progress.map(|d| d.as_secs_f64()),
            "engine_stall_threshold_seconds": lifecycle.probes.engine_stall.as_secs_f64(),
        }),
    )
}

/// The engine's two stall signals, read once so that the verdict and the
/// figures reported with it agree.
struct StallReading {
    heartbeat_age: Duration,
    /// How long requests have waited with nothing moving (None: none wait).
    waiting_without_progress: Option<Duration>,
}

impl StallReading {
    fn of(engine: &semantic_engine::EngineHandle) -> Self {
        Self {
            heartbeat_age: engine.heartbeat_age(),
            waiting_without_progress: engine.stalled_for(),
        }
    }

    /// `ok`, `engine_stalled` (the thread stopped beating) or
    /// `engine_no_progress` (requests wait and nothing moves).
    fn status(&self, limit: Duration) -> &'static str {
        if self.heartbeat_age > limit {
            "engine_stalled"
        } else if self.waiting_without_progress.is_some_and(|d| d > limit) {
            "engine_no_progress"
        } else {
            "ok"
        }
    }
}

/// `GET /health/ready`: the body lists every check and which failed.
pub async fn ready(State(lifecycle): State<Arc<Lifecycle>>) -> Response {
    let phase = lifecycle.phase();
    let mut failing = Vec::new();
    if phase != Phase::Serving {
        failing.push(phase.as_str());
    }
    let mut checks = json!({"phase": phase.as_str()});
    if let Some(state) = lifecycle.state() {
        let counters = state.engine.counters();
        let total = counters.pool_total_blocks.load(Ordering::Relaxed);
        let pinned = counters.pool_pinned_blocks.load(Ordering::Relaxed);
        let ratio = if total == 0 {
            0.0
        } else {
            f64::from(pinned) / f64::from(total)
        };
        if ratio > lifecycle.probes.max_pool_pinned_ratio {
            failing.push("kv_pool_exhausted");
        }
        let queued = counters.queued.load(Ordering::SeqCst);
        let capacity = state.engine.config().queue_capacity;
        if queued >= capacity {
            failing.push("queue_full");
        }
        let stall = StallReading::of(&state.engine).status(lifecycle.probes.engine_stall);
        if stall != "ok" {
            failing.push(stall);
        }
        checks["kv_pool"] = json!({
            "total_blocks": total,
            "used_blocks": counters.pool_used_blocks.load(Ordering::Relaxed),
            "pinned_blocks": pinned,
            "pinned_ratio": ratio,
            "max_pinned_ratio": lifecycle.probes.max_pool_pinned_ratio,
        });
        checks["queue"] = json!({"depth": queued, "capacity": capacity});
    }
    let ok = failing.is_empty();
    answer(
        ok,
        json!({
            "status": if ok { "ready" } else { "not_ready" },
            "failing": failing,
            "checks": checks,
        }),
    )
}

/// `GET /health/startup`: an engine is installed only once `start` has
/// returned, i.e. the model is loaded and the disk tier indexed.
pub async fn startup(State(lifecycle): State<Arc<Lifecycle>>) -> Response {
    let started = lifecycle.state().is_some();
    answer(
        started,
        json!({
            "status": if started { "started" } else { "starting" },
            "phase": lifecycle.phase().as_str(),
        }),
    )
}

fn answer(ok: bool, body: Value) -> Response {
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
