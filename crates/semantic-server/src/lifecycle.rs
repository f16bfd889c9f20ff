//! Where the server is in its life — starting, serving, draining — and the
//! outer router that answers accordingly.
//!
//! The listener is bound before the model loads, so orchestrators can probe
//! `/health/startup` during a long load; until [`Lifecycle::install`] puts
//! the API router in place every other route answers 503 `starting`. Once
//! draining, new requests get 503 `shutting_down` while requests already
//! inside the API router run to completion.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::state::{RouterState, SharedState};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Serving = 1,
    Draining = 2,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Serving => "serving",
            Self::Draining => "draining",
        }
    }
}

/// Thresholds the health probes apply.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbeSettings {
    /// `/health/live` fails once the engine thread has not gone round its
    /// loop for this long (one step of a huge prefill stays well below).
    pub engine_stall: Duration,
    /// `/health/ready` fails above this share of KV blocks pinned by
    /// running requests (idle agents' blocks can be evicted, so they do
    /// not count).
    pub max_pool_pinned_ratio: f64,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            engine_stall: Duration::from_secs(60),
            max_pool_pinned_ratio: 0.9,
        }
    }
}

/// The API once the engine runs: its state and its router.
struct App {
    state: RouterState,
    router: Router,
}

/// Shared by the outer router, the probes and whoever drives start-up and
/// shutdown (the CLI).
pub struct Lifecycle {
    phase: AtomicU8,
    app: OnceLock<App>,
    pub probes: ProbeSettings,
}

impl Lifecycle {
    pub fn new(probes: ProbeSettings) -> Self {
        Self {
            phase: AtomicU8::new(Phase::Starting as u8),
            app: OnceLock::new(),
            probes,
        }
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::SeqCst) {
            0 => Phase::Starting,
            1 => Phase::Serving,
            _ => Phase::Draining,
        }
    }

    /// Put the API in place and start serving it (unless already draining).
    /// Only the first call counts.
    pub fn install(&self, state: RouterState, router: Router) {
        if self.app.set(App { state, router }).is_ok() {
            let _ = self.phase.compare_exchange(
                Phase::Starting as u8,
                Phase::Serving as u8,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
    }

    /// Refuse new requests from now on; the engine refuses new generations
    /// too, so a request racing past the phase check still gets a clean 503.
    pub fn begin_drain(&self) {
        self.phase.store(Phase::Draining as u8, Ordering::SeqCst);
        if let Some(state) = self.state() {
            state.engine.begin_drain();
        }
    }

    /// The state of the engine serving now, once installed.
    pub fn state(&self) -> Option<SharedState> {
        self.app.get().map(|app| app.state.current())
    }

    fn router(&self) -> Option<Router> {
        self.app.get().map(|app| app.router.clone())
    }
}

/// The fallback of the outer router: every non-probe request goes to the
/// API router, or is refused while starting or draining.
pub async fn forward(State(lifecycle): State<Arc<Lifecycle>>, request: Request) -> Response {
    if lifecycle.phase() == Phase::Draining {
        return ApiError::shutting_down().into_response();
    }
    match lifecycle.router() {
        Some(router) => match router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        None => ApiError::starting().into_response(),
    }
}
