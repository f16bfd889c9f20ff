//! `/admin/*` over real HTTP with the real model: the current model,
//! clearing every cache, and hot swap with drain and rollback.

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
