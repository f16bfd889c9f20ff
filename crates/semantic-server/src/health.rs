//! The three probes orchestrators use.
//!
//! - `/health/live`: the process answers and the engine thread is not stuck
//!   (its heartbeat is younger than [`ProbeSettings::engine_stall`]); a
//!   long model load or a long prefill step never fails it.
//! - `/health/ready`: send traffic here? No while starting, draining, with
//!   the KV pool nearly all pinned by running requests, or the queue full.
//! - `/health/startup`: the model is loaded and the disk tier indexed.
//!
//! Probes need no key, are never rate limited and log at debug only.
//!
//! [`ProbeSettings::engine_stall`]: crate::lifecycle::ProbeSettings

use std::sync::atomic::Ordering;
use std::sync::Arc;

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
    let age = state.engine.heartbeat_age();
    let ok = age <= lifecycle.probes.engine_stall;
    answer(
        ok,
        json!({
            "status": if ok { "ok" } else { "engine_stalled" },
            "phase": lifecycle.phase().as_str(),
            "engine_heartbeat_age_seconds": age.as_secs_f64(),
            "engine_stall_threshold_seconds": lifecycle.probes.engine_stall.as_secs_f64(),
        }),
    )
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
