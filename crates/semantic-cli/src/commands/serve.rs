//! `semantic serve`: the HTTP API over the engine, through its whole life.
//!
//! Order of events: bind the listener (so a taken port fails at once), serve
//! probes while the model loads and the disk tier is indexed, serve the API,
//! and on SIGTERM/SIGINT drain: readiness and new requests turn 503, the
//! requests in flight finish (up to `--shutdown-timeout`, or until a second
//! signal), then the engine stops, which persists every hot and warm agent
//! cache to disk before the process exits 0.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use semantic_domain::persistence::AgentPersistence;
use semantic_domain::responses::ResponseBudget;
use semantic_domain::TenantId;
use semantic_engine::{EngineConfig, EngineError, EngineHandle};
use semantic_server::{EngineFactory, ProbeSettings, RouterState, Server};
use semantic_store::{Compat, DiskStore, ResponseDb, StorePersistence};
use tokio::sync::watch;

use super::shutdown_signals::{self, Signals};
use crate::cli::ServeArgs;

/// How long stopped connections get to close after the engine has stopped.
const CONNECTION_CLOSE_GRACE: Duration = Duration::from_secs(5);

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    // Settings first: a refused configuration should not cost a model load.
    let server_config = args.gateway.server_config(args.host, args.port)?;
    let cache_dir = cache_dir(&args)?;
    let mut config = args.engine.to_config()?;
    config.max_tokens = args.max_tokens.policy()?;
    args.reply_defaults.apply(&mut config)?;
    semantic_server::telemetry::prometheus::set_commit(env!("SEMANTIC_GIT_COMMIT"));
    // Before the engine starts, so its first values are recorded.
    semantic_server::telemetry::prometheus::install();
    let runtime = super::async_runtime()?;
    let result = runtime.block_on(serve(args, server_config, config, cache_dir));
    // The model loader thread may still run if a signal came during start-up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

fn cache_dir(args: &ServeArgs) -> anyhow::Result<PathBuf> {
    let cache_dir = match args.cache_dir.clone() {
        Some(dir) => dir,
        None => dirs::data_dir()
            .context("no user data directory; pass --cache-dir")?
            .join("semantic")
            .join("cache"),
    };
    std::fs::create_dir_all(&cache_dir)
        .with_context(|| format!("cannot create --cache-dir {}", cache_dir.display()))?;
    Ok(cache_dir)
}

async fn serve(
    args: ServeArgs,
    server_config: semantic_server::ServerConfig,
    config: EngineConfig,
    cache_dir: PathBuf,
) -> anyhow::Result<()> {
    let addr = server_config.socket_addr();
    let key_tenants = server_config
        .auth
        .api_keys_required()
        .then(|| server_config.auth.tenants());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (--host/--port)"))?;
    let listener_addr = listener.local_addr().ok();
    let responses = open_responses(&cache_dir, &args)?;
    let server = Arc::new(
        Server::new(
            server_config,
            ProbeSettings {
                engine_stall: args.engine_stall_timeout.into(),
                ..ProbeSettings::default()
            },
        )
        .with_responses(responses.clone())
        .with_sessions(responses),
    );
    let mut signals = shutdown_signals::listen()?;
    let (stop_http, http_stopped) = watch::channel(false);
    let http = tokio::spawn(semantic_server::serve_router(
        listener,
        server.router(),
        wait_true(http_stopped),
    ));
    // The bound address, so `--port 0` (a port the kernel picks) is known.
    let addr = listener_addr.unwrap_or(addr);
    tracing::info!(%addr, cache_dir = %cache_dir.display(), "listening; loading the model");

    let factory = Arc::new(ServeEngines {
        config: config.clone(),
        cache_dir: cache_dir.clone(),
    });
    let engine = tokio::select! {
        engine = start_engine(config, cache_dir) => engine?,
        _ = signals.first() => {
            tracing::info!("shutdown signal during start-up; exiting");
            let _ = stop_http.send(true);
            return Ok(());
        }
    };
    let state = server.start(engine, Some(factory));
    tracing::info!("serving");
    let dangling = semantic_server::models::dangling_aliases(&state.current());
    if !dangling.is_empty() {
        tracing::warn!(
            aliases = ?dangling,
            model = %state.current().model_id,
            "these --model-alias targets are not the loaded model (use `default` or its id); \
             requests naming them get 400 model_not_found"
        );
    }
    if let Some(tenants) = key_tenants {
        warn_if_open_tenant_unreachable(&state.current().engine, &tenants).await;
    }

    signals.first().await;
    drain(&server, &state, &mut signals, args.shutdown_timeout.into()).await;
    // The engine serving now: a model swap may have replaced the first one.
    stop_engine(state.current().engine.clone()).await;
    let _ = stop_http.send(true);
    match tokio::time::timeout(CONNECTION_CLOSE_GRACE, http).await {
        Ok(Ok(result)) => result.context("server error")?,
        Ok(Err(e)) => tracing::warn!(error = %e, "HTTP task failed"),
        Err(_) => tracing::warn!("connections still open after the grace period; closing them"),
    }
    tracing::info!("shut down");
    Ok(())
}

/// The stored responses of `/v1/responses` and the sessions of
/// `/v1/sessions`, in the cache directory (one database for every model: a
/// conversation outlives a model swap, only its KV does not).
fn open_responses(cache_dir: &Path, args: &ServeArgs) -> anyhow::Result<Arc<ResponseDb>> {
    let budget = ResponseBudget {
        max_bytes: args.responses_max_bytes.0,
        ttl_secs: Duration::from(args.responses_ttl).as_secs(),
    };
    let db = ResponseDb::open(cache_dir, budget)
        .with_context(|| format!("cannot open the response store in {}", cache_dir.display()))?;
    Ok(Arc::new(db))
}

/// Agents of the open tenant (cached by a server without keys, or written
/// before tenants existed) are reachable only by a key of that tenant: say
/// so at start-up rather than let an upgrade turn them cold silently.
async fn warn_if_open_tenant_unreachable(engine: &EngineHandle, key_tenants: &[TenantId]) {
    let open = TenantId::open();
    if key_tenants.contains(&open) {
        return;
    }
    let Ok(agents) = engine.agents().await else {
        return;
    };
    let stranded = agents.iter().filter(|a| a.agent.tenant == open).count();
    if stranded > 0 {
        tracing::warn!(
            agents = stranded,
            "agents cached for tenant `default` (by a server without API keys, or before tenants \
             existed) are unreachable: no API key belongs to it; to keep using them, give a key \
             `tenant=default` in --api-key-file"
        );
    }
}

/// Refuse new work and wait for the requests in flight, up to `timeout` or
/// a second signal; whatever is left is cancelled when the engine stops.
async fn drain(server: &Server, state: &RouterState, signals: &mut Signals, timeout: Duration) {
    let started = Instant::now();
    server.begin_drain();
    let engine = state.current().engine.clone();
    tracing::info!(
        in_flight = engine.in_flight(),
        timeout_s = timeout.as_secs_f64(),
        "draining: new requests get 503"
    );
    tokio::select! {
        _ = engine.drained() => tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "drained: every request in flight finished"
        ),
        _ = tokio::time::sleep(timeout) => tracing::warn!(
            cancelled = engine.in_flight(),
            "--shutdown-timeout reached; cancelling the requests still in flight"
        ),
        _ = signals.second() => tracing::warn!(
            cancelled = engine.in_flight(),
            "second signal: cancelling the requests still in flight"
        ),
    }
}

/// Stop the engine thread, which persists every agent's cache first.
async fn stop_engine(engine: EngineHandle) {
    let started = Instant::now();
    match tokio::task::spawn_blocking(move || engine.shutdown()).await {
        Ok(()) => tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "engine stopped; agent caches persisted"
        ),
        Err(e) => tracing::error!(error = %e, "engine shutdown task failed"),
    }
}

/// Load the model and index the disk tier off the async runtime.
async fn start_engine(config: EngineConfig, cache_dir: PathBuf) -> anyhow::Result<EngineHandle> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("semantic-start".into())
        .spawn(move || {
            let started = open_disk_tier(&cache_dir, &config)
                .and_then(|persistence| super::start_engine_with(config, Some(persistence)));
            let _ = tx.send(started);
        })
        .context("cannot spawn the model loader thread")?;
    rx.await.context("the model loader thread died")?
}

async fn wait_true(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
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
        engine_build: config.engine_build()?,
        kv_type: config.kv_type,
    };
    let persistence = StorePersistence::new(Arc::new(store), compat)
        .context("cannot start the cache writer thread")?;
    Ok(Arc::new(persistence))
}
