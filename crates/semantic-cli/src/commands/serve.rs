//! `semantic serve`: the HTTP API over the engine.

use std::net::SocketAddr;

use anyhow::Context;

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
    let engine = super::start_engine(args.engine.to_config()?)?;
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
