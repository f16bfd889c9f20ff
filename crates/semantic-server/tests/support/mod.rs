//! Shared set-up of the server's integration tests: the real model, served
//! over real HTTP on 127.0.0.1 with a port chosen at run time.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use semantic_engine::{EngineConfig, EngineHandle};
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

/// An engine served over HTTP on an ephemeral loopback port.
pub struct TestServer {
    pub engine: EngineHandle,
    pub base: String,
    pub client: reqwest::Client,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(engine_config()).await
    }

    pub async fn start_with(config: EngineConfig) -> Self {
        let engine = tokio::task::spawn_blocking(move || EngineHandle::start(config, |_| {}))
            .await
            .unwrap()
            .expect("engine starts");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(semantic_server::serve(listener, engine.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            engine,
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

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).send().await.unwrap()
    }

    /// Stop accepting, fail what is in flight, and wait for both to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let engine = self.engine.clone();
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

/// The `data:` payloads of an SSE body, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| {
            event
                .lines()
                .find_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
                .map(|d| d.trim().to_owned())
        })
        .collect()
}

/// Assert an error response: status, envelope type, message fragment, param.
pub async fn assert_error(
    response: reqwest::Response,
    status: u16,
    kind: &str,
    message_part: &str,
    param: Option<&str>,
) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = response.json().await.unwrap();
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
