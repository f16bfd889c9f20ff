//! `/admin/*` over real HTTP with the real model: the current model,
//! clearing every cache, and hot swap with drain and rollback.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::*;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use semantic_server::{AuthConfig, ServerConfig};
use serde_json::{json, Value};

const ADMIN: &str = "admin-key";

async fn admin_server(cache_dir: Option<&Path>) -> TestServer {
    let config = ServerConfig {
        auth: AuthConfig::new(Vec::<String>::new(), Some(ADMIN)).unwrap(),
        drain_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    };
    let factory = Arc::new(TestEngines {
        config: engine_config(),
        cache_dir: cache_dir.map(Path::to_owned),
        refuse: None,
    });
    TestServer::start_custom(engine_config(), config, Some(factory)).await
}

impl TestServer {
    fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("x-api-key", ADMIN)
    }

    async fn load_model(&self, body: Value) -> reqwest::Response {
        let request = self.admin(reqwest::Method::POST, "/admin/models/load");
        request.json(&body).send().await.unwrap()
    }

    async fn current_model(&self) -> Value {
        let r = self.admin(reqwest::Method::GET, "/admin/models/current");
        r.send().await.unwrap().json().await.unwrap()
    }

    /// One non-streaming turn of `agent`; returns the body.
    async fn agent_turn(&self, agent: &str, messages: &Value) -> Value {
        let r = self
            .client
            .post(self.url("/v1/chat/completions"))
            .header("x-agent-id", agent)
            .json(&json!({"model": "default", "messages": messages, "temperature": 0, "max_tokens": 8}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

fn agent_files(cache: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(models) = std::fs::read_dir(cache.join("models")) else {
        return found;
    };
    for model in models {
        if let Ok(agents) = std::fs::read_dir(model.unwrap().path().join("tenants/default/agents"))
        {
            found.extend(agents.map(|a| a.unwrap().path()));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_model_reports_path_fingerprint_kv_type_and_load_time() {
    let server = admin_server(None).await;
    let current = server.current_model().await;
    let info = server.engine.model().info();
    assert_eq!(current["id"], info.id.as_str());
    assert_eq!(current["path"], info.path.display().to_string());
    assert_eq!(current["fingerprint"], info.fingerprint.as_str());
    assert_eq!(current["kv_type"], "f16");
    assert_eq!(current["context_length"], server.engine.context_window());
    let loaded_at = current["loaded_at"].as_u64().unwrap();
    assert!(loaded_at > 1_600_000_000 && loaded_at <= semantic_server::state::now_unix());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_caches_drops_every_agent_in_memory_and_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let server = admin_server(Some(cache.path())).await;
    let hi = json!([{"role": "user", "content": "Say hi."}]);
    server.agent_turn("keep-hot", &hi).await;
    server.agent_turn("to-disk", &hi).await;
    let r = server
        .client
        .post(server.url("/v1/agents/to-disk/evict"))
        .json(&json!({"tier": "disk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.state.current().engine.persist_all().await.unwrap();
    assert_eq!(agent_files(cache.path()).len(), 2);

    let r = server.admin(reqwest::Method::DELETE, "/admin/caches");
    let cleared: Value = r.send().await.unwrap().json().await.unwrap();
    assert_eq!(cleared["deleted"], 2, "{cleared}");
    assert_eq!(
        (cleared["hot"].as_u64(), cleared["disk"].as_u64()),
        (Some(1), Some(1)),
        "{cleared}"
    );
    assert_eq!(cleared["busy"], json!([]));
    let agents: Value = server.get("/v1/agents").await.json().await.unwrap();
    assert_eq!(agents["data"], json!([]));
    server.state.current().engine.persist_all().await.unwrap();
    assert_eq!(agent_files(cache.path()), Vec::<PathBuf>::new());
    server.shutdown().await;
}

/// A streamed request's full SSE text.
async fn read_all(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 200);
    let mut text = String::new();
    let mut bytes = r.bytes_stream();
    while let Some(piece) = bytes.next().await {
        text.push_str(&String::from_utf8_lossy(&piece.unwrap()));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_to_a_copy_keeps_serving_and_finds_agents_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let server = admin_server(Some(cache.path())).await;
    let first = json!([{"role": "user", "content": "Name a colour."}]);
    let turn1 = server.agent_turn("swapper", &first).await;
    let reply = turn1["choices"][0]["message"]["content"].clone();

    let copy = cache.path().join("swapped-copy.gguf");
    std::fs::copy(model_path(), &copy).unwrap();
    // In flight when the swap starts: must finish on the old engine.
    let mut in_flight = short_chat(32);
    in_flight["stream"] = json!(true);
    let in_flight = server
        .client
        .post(server.url("/v1/chat/completions"))
        .json(&in_flight)
        .send()
        .await
        .unwrap();
    let swap = server.load_model(json!({"path": copy}));
    // Sent while the swap runs: waits at the gate, then is served.
    let during = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.chat(&short_chat(2)).await
    };
    let (swap, during, streamed) = tokio::join!(swap, during, read_all(in_flight));
    let report: Value = swap.json().await.unwrap();
    assert_eq!(report["model"]["id"], "swapped-copy", "{report}");
    assert_eq!(report["drained"], true, "{report}");
    assert_eq!(report["previous_path"], model_path().display().to_string());
    assert!(streamed.trim_end().ends_with("data: [DONE]"), "{streamed}");
    assert_eq!(during.status(), 200);

    let current = server.current_model().await;
    assert_eq!(current["path"], copy.display().to_string());
    let models: Value = server.get("/v1/models").await.json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "swapped-copy");
    // Same weights, same fingerprint: the agent's file is found on disk.
    let second = json!([
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "Another one."},
    ]);
    let turn2 = server.agent_turn("swapper", &second).await;
    assert_eq!(turn2["usage"]["cache_source"], "disk", "{turn2}");
    assert!(
        turn2["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_path_is_refused_naming_path_and_the_old_model_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = admin_server(None).await;
    let before = server.current_model().await;
    let text_file = dir.path().join("notes.gguf");
    std::fs::write(&text_file, "not a model").unwrap();
    let cases = [
        (
            json!({"path": dir.path().join("missing.gguf")}),
            404,
            Some("model_file_not_found"),
        ),
        (json!({"path": text_file}), 400, Some("invalid_model")),
        (json!({"path": ""}), 400, None),
        (json!({}), 400, None),
        (json!({"path": 5}), 400, None),
    ];
    for (body, status, code) in cases {
        let r = server.load_model(body.clone()).await;
        let envelope = assert_envelope(r, status, "invalid_request_error", code).await;
        assert_eq!(envelope["error"]["param"], "path", "{body}: {envelope}");
    }
    assert_eq!(server.current_model().await, before);
    let r = server.chat(&short_chat(2)).await;
    assert_eq!(r.status(), 200);
    server.shutdown().await;
}

/// The gateway belongs to the server, not to an engine: keys, the per-key
/// and per-agent rate limits, the message limit and the body limit all
/// hold on the first engine, after a successful swap, and after a swap
/// that failed and rolled back (each phase with its own key and agent, so
/// every bucket it empties is its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gateway_limit_holds_after_a_swap_and_after_a_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("swapped-copy.gguf");
    let refused = dir.path().join("refused-copy.gguf");
    std::fs::copy(model_path(), &copy).unwrap();
    std::fs::copy(model_path(), &refused).unwrap();
    let config = ServerConfig {
        auth: AuthConfig::new(["k0", "k1", "k2"], Some(ADMIN)).unwrap(),
        rate_limits: semantic_server::RateLimitConfig {
            per_key_per_minute: std::num::NonZeroU32::new(6),
            per_agent_per_minute: std::num::NonZeroU32::new(1),
            burst: None,
        },
        limits: semantic_server::RequestLimits {
            max_messages: 3,
            max_body_bytes: 64 * 1024,
        },
        ..ServerConfig::default()
    };
    let factory = Arc::new(TestEngines {
        config: engine_config(),
        cache_dir: None,
        refuse: Some(refused.clone()),
    });
    let server = TestServer::start_custom(engine_config(), config, Some(factory)).await;
    assert_gateway_limits(&server, "k0").await;

    let r = server.load_model(json!({"path": copy})).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_gateway_limits(&server, "k1").await;

    let r = server.load_model(json!({"path": refused})).await;
    let envelope = assert_envelope(r, 400, "invalid_request_error", Some("invalid_model")).await;
    assert!(
        envelope["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refuses"),
        "{envelope}"
    );
    assert_eq!(
        server.current_model().await["path"],
        copy.display().to_string()
    );
    assert_gateway_limits(&server, "k2").await;
    server.shutdown().await;
}

/// Each gateway limit, with `key` (whose bucket of 6 this empties).
async fn assert_gateway_limits(server: &TestServer, key: &str) {
    let chat = |body: Value, agent: Option<String>| {
        let mut request = server
            .client
            .post(server.url("/v1/chat/completions"))
            .header("x-api-key", key)
            .json(&body);
        if let Some(agent) = agent {
            request = request.header("x-agent-id", agent);
        }
        request.send()
    };
    // No key: 401.
    let r = server.chat(&short_chat(2)).await;
    assert_envelope(r, 401, "authentication_error", Some("missing_api_key")).await;
    // Four messages where three are allowed: 400 naming messages.
    let mut body = short_chat(2);
    body["messages"] = json!(vec![json!({"role": "user", "content": "a"}); 4]);
    let r = chat(body, None).await.unwrap();
    let envelope =
        assert_envelope(r, 400, "invalid_request_error", Some("too_many_messages")).await;
    assert_eq!(envelope["error"]["param"], "messages", "{key}: {envelope}");
    // A body over 64 KiB: 413.
    let mut body = short_chat(2);
    body["messages"][0]["content"] = json!("x".repeat(70 * 1024));
    assert_eq!(chat(body, None).await.unwrap().status(), 413, "{key}");
    // An agent at one request a minute: the second is 429.
    let agent = format!("limited-{key}");
    let r = chat(short_chat(2), Some(agent.clone())).await.unwrap();
    assert_eq!(r.status(), 200, "{key}");
    let r = chat(short_chat(2), Some(agent)).await.unwrap();
    let envelope = assert_envelope(r, 429, "rate_limit_error", Some("rate_limited")).await;
    assert!(
        envelope["error"]["message"]
            .as_str()
            .unwrap()
            .contains("per agent"),
        "{key}: {envelope}"
    );
    // The key itself, six a minute: refused within its bucket.
    let mut refused = None;
    for _ in 0..7 {
        let r = server
            .client
            .get(server.url("/v1/models"))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            refused = Some(r.json::<Value>().await.unwrap());
            break;
        }
        assert_eq!(r.status(), 200, "{key}");
    }
    let refused = refused.unwrap_or_else(|| panic!("{key}: never rate limited"));
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("API key"),
        "{key}: {refused}"
    );
}
