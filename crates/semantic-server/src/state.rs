//! What every handler shares: the engine and facts fixed at start-up.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use axum::extract::FromRef;
use semantic_engine::EngineHandle;

use crate::gateway::Gateway;

/// What handlers share about the engine serving now, with the server's
/// one [`Gateway`]. Built only by [`RouterState`], which owns the gateway,
/// so no engine can ever be served under another (say, an open) gateway:
/// every limit holds before, during and after a model swap.
pub struct AppState {
    pub engine: EngineHandle,
    /// The id clients may use in `model` besides `"default"`.
    pub model_id: String,
    /// Unix seconds reported as the model's `created` (the file's mtime).
    pub model_created: u64,
    /// Identifies the serving configuration in `system_fingerprint`, so a
    /// client can tell when answers may differ for the same seed.
    pub fingerprint: String,
    /// Keys, rate limits, request limits, swap control: the router's own.
    pub gateway: Arc<Gateway>,
    /// Unix seconds when this engine started serving.
    pub loaded_at: u64,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    fn serving(engine: EngineHandle, gateway: Arc<Gateway>) -> Self {
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
            gateway,
            loaded_at: now_unix(),
        }
    }
}

/// The router's state: the one [`Gateway`] of the server's life, and the
/// [`AppState`] of the engine serving now, which a model swap replaces.
/// Handlers extract `State<SharedState>` and get the current one, loaded
/// once at extraction, so a request keeps the engine it started on even if
/// a swap happens meanwhile.
#[derive(Clone)]
pub struct RouterState {
    current: Arc<ArcSwap<AppState>>,
    gateway: Arc<Gateway>,
}

impl RouterState {
    /// Serve `engine` behind `gateway`.
    pub fn new(gateway: Arc<Gateway>, engine: EngineHandle) -> Self {
        let state = AppState::serving(engine, gateway.clone());
        Self {
            current: Arc::new(ArcSwap::from_pointee(state)),
            gateway,
        }
    }

    /// The state of the engine serving now.
    pub fn current(&self) -> SharedState {
        self.current.load_full()
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Serve `engine` (behind this router's gateway) from now on; returns
    /// the state it replaces.
    pub fn serve(&self, engine: EngineHandle) -> SharedState {
        let state = AppState::serving(engine, self.gateway.clone());
        self.current.swap(Arc::new(state))
    }
}

impl FromRef<RouterState> for SharedState {
    fn from_ref(router: &RouterState) -> Self {
        router.current()
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
