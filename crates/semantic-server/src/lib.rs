//! The HTTP adapter of `semantic`: an OpenAI-compatible API over an
//! already-started [`EngineHandle`], served with axum on tokio.
//!
//! Layout: [`routes`] holds the route table and middleware; each API family
//! lives in its own module ([`openai`] now, Anthropic later) with its wire
//! types, request conversion and handlers; [`agents`] is our extension for
//! inspecting and evicting agents' KV caches; [`error`], [`extract`],
//! [`sse`] and [`tool_use`] (tool prompts, output grammars, call parsing)
//! are shared by all of them so every family answers errors in one envelope,
//! streams the same way and calls tools the same way.

pub mod agents;
pub mod error;
pub mod extract;
pub mod health;
pub mod models;
pub mod openai;
pub mod routes;
pub mod sse;
pub mod state;
pub mod tool_use;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::serve::ListenerExt;
use semantic_engine::EngineHandle;

pub use error::ApiError;

/// Where and how the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    pub host: IpAddr,
    pub port: u16,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
}

/// 4 MiB: a full 128K-token prompt as JSON fits with room to spare.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

impl Default for ServerConfig {
    /// Loopback only: exposing the server is an explicit choice.
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

impl ServerConfig {
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// The router over an already-started engine, with default settings.
pub fn router(engine: EngineHandle) -> axum::Router {
    router_with_config(engine, &ServerConfig::default())
}

/// The router over an already-started engine; only `max_body_bytes` of
/// `config` applies here (host and port are the listener's business).
pub fn router_with_config(engine: EngineHandle, config: &ServerConfig) -> axum::Router {
    let state = state::AppState::new(engine, config.max_body_bytes);
    routes::build(Arc::new(state))
}

/// Serve on `listener` with default settings until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: EngineHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(engine), shutdown).await
}

/// Serve `router` on `listener` until `shutdown` resolves.
///
/// Shutdown is graceful: the listener closes at once, then in-flight
/// requests, streams included, run to completion. To end long streams
/// sooner, shut the engine down after `shutdown` fires; that fails every
/// in-flight generation, which ends its stream with an error event.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Streamed tokens are small writes; Nagle would hold them back.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
