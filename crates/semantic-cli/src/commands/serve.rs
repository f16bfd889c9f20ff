//! `semantic serve`: the HTTP API over the engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use semantic_domain::persistence::AgentPersistence;
use semantic_engine::system_info::llama_build_info;
use semantic_engine::{EngineConfig, EngineError, EngineHandle};
use semantic_server::EngineFactory;
use semantic_store::{Compat, DiskStore, StorePersistence};

use crate::cli::ServeArgs;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    // Settings first: a refused configuration should not cost a model load.
    let server_config = args.gateway.server_config(args.host, args.port)?;
    let cache_dir = match args.cache_dir.clone() {
        Some(dir) => dir,
        None => dirs::data_dir()
            .context("no user data directory; pass --cache-dir")?
            .join("semantic")
            .join("cache"),
    };
    std::fs::create_dir_all(&cache_dir)
        .with_context(|| format!("cannot create --cache-dir {}", cache_dir.display()))?;
    semantic_server::telemetry::prometheus::set_commit(env!("SEMANTIC_GIT_COMMIT"));
    // Before the engine starts, so its first values are recorded.
    semantic_server::telemetry::prometheus::install();
    let config = args.engine.to_config()?;
    let persistence = open_disk_tier(&cache_dir, &config)?;
    let factory = Arc::new(ServeEngines {
        config: config.clone(),
        cache_dir: cache_dir.clone(),
    });
    let engine = super::start_engine_with(config, Some(persistence))?;
    let app = semantic_server::app(engine, &server_config, Some(factory));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let addr = server_config.socket_addr();
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (--host/--port)"))?;
        tracing::info!(%addr, cache_dir = %cache_dir.display(), "listening");
        semantic_server::serve_router(listener, app.router, shutdown_signal())
            .await
            .context("server error")
    });
    // The engine serving now: a model swap may have replaced the first one.
    app.state.current().engine.shutdown();
    result
}

/// Starts an engine for a model swap: the same engine settings, the new
/// model, and the disk tier of the new model's fingerprint.
struct ServeEngines {
    config: EngineConfig,
    cache_dir: PathBuf,
}

impl EngineFactory for ServeEngines {
    fn start(&self, model_path: &Path) -> Result<EngineHandle, EngineError> {
        let config = EngineConfig {
            model_path: model_path.to_owned(),
            ..self.config.clone()
        };
        let persistence =
            open_disk_tier(&self.cache_dir, &config).map_err(|e| EngineError::InvalidConfig {
                setting: "cache_dir",
                reason: format!("{e:#}"),
            })?;
        EngineHandle::start_with(config, Some(persistence), |_| {})
    }
}

/// The disk tier for this model: its own directory under `cache_dir`,
/// keyed by the model fingerprint, so caches of different models never mix.
fn open_disk_tier(
    cache_dir: &Path,
    config: &EngineConfig,
) -> anyhow::Result<Arc<dyn AgentPersistence>> {
    let fingerprint = semantic_engine::fingerprint::model_fingerprint(&config.model_path)?;
    let store = DiskStore::open(cache_dir, &fingerprint)
        .with_context(|| format!("cannot open the cache directory {}", cache_dir.display()))?;
    let compat = Compat {
        model_fingerprint: fingerprint,
        engine_build: llama_build_info().fingerprint(),
        kv_type: config.kv_type,
    };
    let persistence = StorePersistence::new(Arc::new(store), compat)
        .context("cannot start the cache writer thread")?;
    Ok(Arc::new(persistence))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown signal received");
}
