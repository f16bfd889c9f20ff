//! The HTTP adapter of `semantic`: OpenAI- and Anthropic-compatible APIs
//! over an already-started [`EngineHandle`], served with axum on tokio.
//!
//! Layout: [`routes`] holds the route table and middleware; each API family
//! lives in its own module ([`openai`], [`anthropic`]) with its wire types,
//! request conversion and handlers; [`agents`] is our extension for
//! inspecting and evicting agents' KV caches; [`sessions`] runs multi-agent
//! sessions over the same generation path. Shared by all families:
//! [`error`] (one error type), [`error_envelope`] (renders it in the
//! family's envelope by path), [`extract`] (JSON bodies), [`agent_id`]
//! (which agent a request names), [`prompt`] (template and tokenize),
//! [`tool_use`] (tool prompts, output grammars, call parsing),
//! [`generation`] (submit, wait for a whole reply), [`reply_stream`] (drive
//! a streamed reply; each family renders its events) and [`sse`] (stream
//! framing).

pub mod admin;
pub mod agent_id;
pub mod agents;
pub mod anthropic;
pub mod auth;
pub mod error;
pub mod error_envelope;
pub mod extract;
pub mod front;
pub mod fuzzing;
pub mod gateway;
pub mod generation;
pub mod health;
pub mod lifecycle;
pub mod limits;
pub mod model_alias;
pub mod models;
pub mod openai;
pub mod openapi;
pub mod prompt;
pub mod rate_limit;
pub mod reply_stream;
pub mod request_identity;
pub mod responses;
pub mod routes;
pub mod sessions;
pub mod sse;
pub mod state;
pub mod swap;
pub mod telemetry;
pub mod tenant;
pub mod tool_use;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use semantic_domain::responses::ResponseStore;
use semantic_domain::sessions::SessionStore;
use semantic_engine::EngineHandle;

pub use auth::AuthConfig;
pub use error::ApiError;
pub use lifecycle::{Lifecycle, Phase, ProbeSettings};
pub use limits::RequestLimits;
pub use model_alias::{ModelAlias, ModelAliases};
pub use rate_limit::RateLimitConfig;
pub use state::RouterState;
pub use swap::EngineFactory;

/// Where and how the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    pub host: IpAddr,
    pub port: u16,
    /// API and admin keys; none configured means an open API.
    pub auth: AuthConfig,
    pub rate_limits: RateLimitConfig,
    /// Body size and message count of one request.
    pub limits: RequestLimits,
    /// `--model-alias`: other names clients may call the model by.
    pub model_aliases: ModelAliases,
    /// `--stream-ping-interval`: the longest a stream goes without an event.
    pub stream_ping_interval: Duration,
    /// Longest wait for in-flight requests before a model swap.
    pub drain_timeout: Duration,
}

impl Default for ServerConfig {
    /// Loopback only: exposing the server is an explicit choice.
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            auth: AuthConfig::default(),
            rate_limits: RateLimitConfig::default(),
            limits: RequestLimits::default(),
            model_aliases: ModelAliases::default(),
            stream_ping_interval: reply_stream::DEFAULT_IDLE_EVENT_AFTER,
            drain_timeout: swap::DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

impl ServerConfig {
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// A server through its life: build it, serve [`Server::router`] at once
/// (probes answer while the model loads), [`Server::start`] it when the
/// engine is up, [`Server::begin_drain`] on shutdown.
pub struct Server {
    lifecycle: Arc<Lifecycle>,
    config: ServerConfig,
    /// Stored responses; in memory unless [`Server::with_responses`] says.
    responses: Option<Arc<dyn ResponseStore>>,
    /// Multi-agent sessions; in memory unless [`Server::with_sessions`] says.
    sessions: Option<Arc<dyn SessionStore>>,
}

impl Server {
    pub fn new(config: ServerConfig, probes: ProbeSettings) -> Self {
        Self {
            lifecycle: Arc::new(Lifecycle::new(probes)),
            config,
            responses: None,
            sessions: None,
        }
    }

    /// Keep stored responses (`/v1/responses`) in `store`.
    pub fn with_responses(mut self, store: Arc<dyn ResponseStore>) -> Self {
        self.responses = Some(store);
        self
    }

    /// Keep multi-agent sessions (`/v1/sessions`) in `store`.
    pub fn with_sessions(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.sessions = Some(store);
        self
    }

    /// The whole router: probes, request ids and logging, then the API.
    pub fn router(&self) -> axum::Router {
        front::build(self.lifecycle.clone())
    }

    /// Serve the API over `engine` from now on; with a `factory`,
    /// `POST /admin/models/load` can swap the model. The returned state
    /// says which engine serves at any time (shut *that* one down).
    pub fn start(
        &self,
        engine: EngineHandle,
        factory: Option<Arc<dyn EngineFactory>>,
    ) -> RouterState {
        let gateway = gateway::Gateway {
            auth: self.config.auth.clone(),
            rate_limits: rate_limit::RateLimits::new(self.config.rate_limits),
            limits: self.config.limits,
            model_aliases: self.config.model_aliases.clone(),
            stream_ping_interval: self.config.stream_ping_interval,
            swap: swap::SwapControl::new(self.config.drain_timeout),
            factory,
            responses: self
                .responses
                .clone()
                .unwrap_or_else(gateway::memory_responses),
            sessions: self
                .sessions
                .clone()
                .unwrap_or_else(gateway::memory_sessions),
            session_claims: Arc::default(),
        };
        let state = RouterState::new(Arc::new(gateway), engine);
        self.lifecycle
            .install(state.clone(), routes::build_with(state.clone()));
        state
    }

    /// Refuse new requests (503) and generations; in-flight ones run on.
    pub fn begin_drain(&self) {
        self.lifecycle.begin_drain();
    }

    pub fn lifecycle(&self) -> &Arc<Lifecycle> {
        &self.lifecycle
    }
}

/// The router over an already-started engine, with default settings.
pub fn router(engine: EngineHandle) -> axum::Router {
    router_with_config(engine, &ServerConfig::default())
}

/// The router over an already-started engine; everything in `config` but
/// host and port (the listener's business) applies here.
pub fn router_with_config(engine: EngineHandle, config: &ServerConfig) -> axum::Router {
    app(engine, config, None).router
}

/// A router and the handle to its swappable state.
pub struct App {
    pub router: axum::Router,
    /// Which engine serves now (it changes on a model swap): shut *that*
    /// one down when the server stops.
    pub state: RouterState,
}

/// The whole router (probes, request ids, the API) over an already-started
/// engine; with a `factory`, `POST /admin/models/load` can swap the model.
pub fn app(
    engine: EngineHandle,
    config: &ServerConfig,
    factory: Option<Arc<dyn EngineFactory>>,
) -> App {
    app_with_store(engine, config, factory, None)
}

/// [`app`], with stored responses and sessions in `store` (one database,
/// as `semantic serve` keeps them) rather than in memory.
pub fn app_with_store(
    engine: EngineHandle,
    config: &ServerConfig,
    factory: Option<Arc<dyn EngineFactory>>,
    store: Option<Arc<semantic_store::ResponseDb>>,
) -> App {
    let mut server = Server::new(config.clone(), ProbeSettings::default());
    if let Some(db) = store {
        server = server.with_responses(db.clone()).with_sessions(db);
    }
    let state = server.start(engine, factory);
    App {
        router: server.router(),
        state,
    }
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
