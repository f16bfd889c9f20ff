//! Shared set-up of the server's integration tests: the real model, served
//! over real HTTP on 127.0.0.1 with a port chosen at run time.
#![allow(dead_code)]

pub mod anthropic;
pub mod engine_checks;
pub mod prompts;
pub mod sse;
pub mod tool_fixtures;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use semantic_engine::{EngineConfig, EngineError, EngineHandle};
use semantic_server::{EngineFactory, RouterState, ServerConfig};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The test model: `SEMANTIC_TEST_MODEL`, else the one `scripts/fetch-model.sh` fetched.
pub fn model_path() -> PathBuf {
    if let Ok(p) = std::env::var("SEMANTIC_TEST_MODEL") {
        return PathBuf::from(p);
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.is_file(),
        "test model missing at {}; run scripts/fetch-model.sh",
        path.display()
    );
    path
}

pub fn engine_config() -> EngineConfig {
    let mut c = EngineConfig::new(model_path());
    c.context_tokens = 8192;
    c.max_sequences = 8;
    c
}

/// One sequence running and one waiting at most, so a third request finds
/// the queue full.
pub fn one_slot_config() -> EngineConfig {
    let mut c = engine_config();
    c.max_sequences = 1;
    c.queue_capacity = 1;
    c
}

/// An engine served over HTTP on an ephemeral loopback port.
pub struct TestServer {
    /// The engine the server started with (a model swap replaces it; see `state`).
    pub engine: EngineHandle,
    /// Which engine serves now.
    pub state: RouterState,
    pub base: String,
    pub client: reqwest::Client,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// Starts engines with the test settings, like `semantic serve` does,
/// with a disk tier per model fingerprint when `cache_dir` is set.
pub struct TestEngines {
    pub config: EngineConfig,
    pub cache_dir: Option<PathBuf>,
    /// A model file this factory refuses to start (after the swap's probe
    /// accepted it), to drive a swap into its rollback.
    pub refuse: Option<PathBuf>,
}

impl EngineFactory for TestEngines {
    fn start(&self, model_path: &Path) -> Result<EngineHandle, EngineError> {
        if self.refuse.as_deref() == Some(model_path) {
            return Err(EngineError::ContextCreate(format!(
                "the test factory refuses to start {}",
                model_path.display()
            )));
        }
        let config = EngineConfig {
            model_path: model_path.to_owned(),
            ..self.config.clone()
        };
        let persistence = match &self.cache_dir {
            Some(dir) => Some(disk_tier(dir, &config)?),
            None => None,
        };
        EngineHandle::start_with(config, persistence, |_| {})
    }
}

fn disk_tier(
    dir: &Path,
    config: &EngineConfig,
) -> Result<Arc<dyn semantic_domain::persistence::AgentPersistence>, EngineError> {
    let fingerprint = semantic_engine::fingerprint::model_fingerprint(&config.model_path)?;
    let store = semantic_store::DiskStore::open(dir, &fingerprint).unwrap();
    let compat = semantic_store::Compat {
        model_fingerprint: fingerprint,
        engine_build: semantic_engine::system_info::llama_build_info().fingerprint(),
        kv_type: config.kv_type,
    };
    Ok(Arc::new(
        semantic_store::StorePersistence::new(Arc::new(store), compat).unwrap(),
    ))
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(engine_config()).await
    }

    pub async fn start_with(config: EngineConfig) -> Self {
        Self::start_custom(config, ServerConfig::default(), None).await
    }

    /// A server with its own gateway settings and, for hot swap, an engine
    /// factory (whose disk tier, if any, the first engine shares).
    pub async fn start_custom(
        config: EngineConfig,
        server: ServerConfig,
        factory: Option<Arc<TestEngines>>,
    ) -> Self {
        Self::start_stored(config, server, factory, None).await
    }

    /// [`Self::start_custom`], keeping stored responses and sessions in
    /// `store` (a database a later server can open again, as after a
    /// restart) instead of in memory.
    pub async fn start_stored(
        config: EngineConfig,
        server: ServerConfig,
        factory: Option<Arc<TestEngines>>,
        store: Option<Arc<semantic_store::ResponseDb>>,
    ) -> Self {
        let first = factory.clone();
        let engine = tokio::task::spawn_blocking(move || match first {
            Some(f) => f.start(&config.model_path),
            None => EngineHandle::start(config, |_| {}),
        })
        .await
        .unwrap()
        .expect("engine starts");
        Self::serve_custom(engine, server, factory, store).await
    }

    /// Serve an already-started engine with default settings.
    pub async fn serve(engine: EngineHandle) -> Self {
        Self::serve_custom(engine, ServerConfig::default(), None, None).await
    }

    async fn serve_custom(
        engine: EngineHandle,
        server: ServerConfig,
        factory: Option<Arc<TestEngines>>,
        store: Option<Arc<semantic_store::ResponseDb>>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let factory = factory.map(|f| f as Arc<dyn EngineFactory>);
        let app = semantic_server::app_with_store(engine.clone(), &server, factory, store);
        let task = tokio::spawn(semantic_server::serve_router(listener, app.router, async {
            let _ = stopped.await;
        }));
        Self {
            engine,
            state: app.state,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            stop,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn chat(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/chat/completions"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POST `body` as JSON to `path`, as `agent` (`X-Agent-ID`) if given.
    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        agent: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(agent) = agent {
            request = request.header("x-agent-id", agent);
        }
        request.send().await.unwrap()
    }

    /// POST `body` as it is, with the given media type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: String,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).send().await.unwrap()
    }

    /// Stop accepting, fail what is in flight, and wait for both to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let engine = self.state.current().engine.clone();
        tokio::task::spawn_blocking(move || engine.shutdown())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops after shutdown")
            .unwrap()
            .unwrap();
    }
}

/// Assert an error response: status, JSON envelope `type` and `code`, a
/// non-empty message; returns the body.
pub async fn assert_envelope(
    response: reqwest::Response,
    status: u16,
    kind: &str,
    code: Option<&str>,
) -> Value {
    let got = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    assert!(
        content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json")),
        "{content_type:?}"
    );
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert_eq!(body["error"]["code"].as_str(), code, "{body}");
    assert!(
        !body["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{body}"
    );
    body
}

/// Default server settings with `--model-alias` entries (`NAME=MODEL`).
pub fn with_model_aliases(aliases: &[&str]) -> ServerConfig {
    let parsed = aliases.iter().map(|a| a.parse().unwrap()).collect();
    ServerConfig {
        model_aliases: semantic_server::ModelAliases::new(parsed).unwrap(),
        ..ServerConfig::default()
    }
}

/// A short greedy chat body.
pub fn short_chat(max_tokens: u32) -> Value {
    serde_json::json!({
        "model": "default",
        "messages": [{"role": "user", "content": "Say hello."}],
        "temperature": 0,
        "max_tokens": max_tokens,
    })
}

/// Assert an error response: status, envelope type, message fragment, param.
pub async fn assert_error(
    response: reqwest::Response,
    status: u16,
    kind: &str,
    message_part: &str,
    param: Option<&str>,
) -> Value {
    let body = json_error_body(response, status).await;
    let error = &body["error"];
    assert_eq!(error["type"], kind, "{body}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(message_part),
        "message {message:?} lacks {message_part:?}"
    );
    assert_eq!(error["param"].as_str(), param, "{body}");
    body
}

/// Assert an error response's status and JSON media type; returns its body.
pub async fn json_error_body(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    response.json().await.unwrap()
}
