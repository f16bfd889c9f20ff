//! `semantic serve`: the HTTP API over the engine.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use semantic_domain::persistence::AgentPersistence;
use semantic_engine::system_info::llama_build_info;
use semantic_engine::EngineConfig;
use semantic_store::{Compat, DiskStore, StorePersistence};

use crate::cli::ServeArgs;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
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
    let engine = super::start_engine_with(config, Some(persistence))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let addr = SocketAddr::new(args.host, args.port);
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (--host/--port)"))?;
        tracing::info!(%addr, cache_dir = %cache_dir.display(), "listening");
        semantic_server::serve(listener, engine.clone(), shutdown_signal())
            .await
            .context("server error")
    });
    engine.shutdown();
    result
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
