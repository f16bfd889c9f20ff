//! Model hot swap: the port that starts an engine for another model, and
//! the procedure that moves the server onto it.
//!
//! Order (so a failure never leaves the server without a model):
//! 1. load the new file once to check it is a usable GGUF; the old engine
//!    serves meanwhile, and a bad file changes nothing;
//! 2. close the admission gate: new API requests wait (they are not
//!    refused) while requests already admitted finish, up to the drain
//!    timeout;
//! 3. persist every agent of the old engine and shut it down; agents' files
//!    live under the old model's fingerprint, so swapping back finds them;
//! 4. start the new engine through the [`EngineFactory`] (which gives it the
//!    disk tier of *its* fingerprint) and switch the router over; if that
//!    fails, restart the old model the same way (rollback);
//! 5. open the gate: held requests go to whichever engine now serves.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use semantic_engine::{EngineError, EngineHandle, LoadedModel};
use tokio::sync::{Mutex, RwLock};

use crate::state::RouterState;

/// Starts engines for the server: same engine settings, the model at the
/// given path, and that model's disk tier. Implemented by the binary,
/// which owns the configuration and the cache directory.
pub trait EngineFactory: Send + Sync {
    /// Load `model_path` and start an engine on it (blocking: call it off
    /// the async runtime).
    fn start(&self, model_path: &Path) -> Result<EngineHandle, EngineError>;
}

/// Default longest wait for admitted requests to finish before a swap.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the drain checks whether the old engine is idle.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// The admission gate and the count of admitted requests.
#[derive(Debug)]
pub struct SwapControl {
    /// Requests take it shared for an instant to be admitted; a swap holds
    /// it exclusively, so requests arriving during a swap wait.
    gate: RwLock<()>,
    in_flight: Arc<AtomicUsize>,
    /// One swap at a time.
    swapping: Mutex<()>,
    pub drain_timeout: Duration,
}

impl Default for SwapControl {
    fn default() -> Self {
        Self::new(DEFAULT_DRAIN_TIMEOUT)
    }
}

/// An admitted request; dropping it (answered or cancelled) un-counts it.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SwapControl {
    pub fn new(drain_timeout: Duration) -> Self {
        Self {
            gate: RwLock::new(()),
            in_flight: Arc::new(AtomicUsize::new(0)),
            swapping: Mutex::new(()),
            drain_timeout,
        }
    }

    /// Admit one request, waiting while a swap is in progress. Counted
    /// under the gate, so once a swap holds the gate the count only falls.
    pub async fn admit(&self) -> InFlight {
        let _open = self.gate.read().await;
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.in_flight.clone())
    }

    /// Wait until no admitted request is in a handler, then until `engine`
    /// has no generation in flight, or the deadline. True when it drained
    /// in time.
    ///
    /// The gate only holds the door: the work in flight is counted by the
    /// engine's own admission gate (each generation from submission until
    /// its stream is dropped, streams still sending included), the same
    /// count a shutdown drains (`EngineHandle::drained`). With the door
    /// held and no handler left, nothing can enter that count any more.
    async fn drain(&self, engine: &EngineHandle, deadline: Instant) -> bool {
        let drained = async {
            while self.in_flight.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(DRAIN_POLL).await;
            }
            engine.drained().await;
        };
        tokio::time::timeout_at(deadline.into(), drained)
            .await
            .is_ok()
    }
}

/// Why a swap did not happen (or happened only as a rollback).
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error("model hot swap is not available: this server was started without an engine factory")]
    Unavailable,
    #[error("another model swap is in progress; retry when it finishes")]
    Busy,
    #[error("path must name a GGUF file")]
    EmptyPath,
    #[error("cannot load {}: {source}", path.display())]
    Rejected { path: PathBuf, source: EngineError },
    #[error("the new model {} failed to start ({source}); the previous model {} was restarted and keeps serving", path.display(), previous.display())]
    RolledBack {
        path: PathBuf,
        previous: PathBuf,
        source: EngineError,
    },
    #[error("the new model {} failed to start ({source}) and restarting the previous model {} failed too ({rollback}); no model is serving", path.display(), previous.display())]
    RollbackFailed {
        path: PathBuf,
        previous: PathBuf,
        source: EngineError,
        rollback: EngineError,
    },
    #[error("internal error during the model swap: {0}")]
    Internal(String),
}

/// What a completed swap did.
#[derive(Debug)]
pub struct SwapReport {
    pub previous: PathBuf,
    /// False when the drain timed out and in-flight requests were failed.
    pub drained: bool,
    pub elapsed: Duration,
}

/// Swap the serving model to `path` (see the module docs for the order).
pub async fn hot_swap(router: &RouterState, path: PathBuf) -> Result<SwapReport, SwapError> {
    let gateway = router.gateway();
    let factory = gateway.factory.clone().ok_or(SwapError::Unavailable)?;
    let _one_at_a_time = gateway
        .swap
        .swapping
        .try_lock()
        .map_err(|_| SwapError::Busy)?;
    if path.as_os_str().is_empty() {
        return Err(SwapError::EmptyPath);
    }
    let started = Instant::now();
    probe(&path).await?;

    let _closed = gateway.swap.gate.write().await;
    let old = router.current();
    let previous = old.engine.model().info().path.clone();
    let deadline = Instant::now() + gateway.swap.drain_timeout;
    let drained = gateway.swap.drain(&old.engine, deadline).await;
    if !drained {
        tracing::warn!("drain timed out; failing the old engine's remaining requests");
    }
    if let Err(e) = old.engine.persist_all().await {
        tracing::warn!(error = %e, "could not persist agents before the swap");
    }
    let engine = old.engine.clone();
    blocking(move || engine.shutdown()).await?;

    let serving = match start(&factory, path.clone()).await {
        Ok(engine) => engine,
        Err(source) => {
            return Err(rollback(router, &factory, path, previous, source).await);
        }
    };
    router.serve(serving);
    tracing::info!(from = %previous.display(), to = %path.display(), "model swapped");
    Ok(SwapReport {
        previous,
        drained,
        elapsed: started.elapsed(),
    })
}

/// Restart the previous model after the new one failed to start.
async fn rollback(
    router: &RouterState,
    factory: &Arc<dyn EngineFactory>,
    path: PathBuf,
    previous: PathBuf,
    source: EngineError,
) -> SwapError {
    tracing::warn!(error = %source, "new model failed to start; restarting the previous one");
    match start(factory, previous.clone()).await {
        Ok(engine) => {
            router.serve(engine);
            SwapError::RolledBack {
                path,
                previous,
                source,
            }
        }
        Err(rollback) => SwapError::RollbackFailed {
            path,
            previous,
            source,
            rollback,
        },
    }
}

/// Load the file once (off the runtime) to learn that it is a usable GGUF.
async fn probe(path: &Path) -> Result<(), SwapError> {
    let owned = path.to_owned();
    blocking(move || LoadedModel::load(&owned, Default::default(), |_| {}).map(drop))
        .await?
        .map_err(|source| SwapError::Rejected {
            path: path.to_owned(),
            source,
        })
}

async fn start(
    factory: &Arc<dyn EngineFactory>,
    path: PathBuf,
) -> Result<EngineHandle, EngineError> {
    let factory = factory.clone();
    blocking(move || factory.start(&path))
        .await
        .unwrap_or_else(|e| Err(EngineError::ContextCreate(e.to_string())))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SwapError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SwapError::Internal(format!("blocking task failed: {e}")))
}
