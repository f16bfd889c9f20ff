//! Upgrading to tenants keeps existing caches: a file of the layout before
//! tenants (`models/<fp>/agents/`) is moved into tenant `default` at start;
//! a keyed server with no key of that tenant says the agents are
//! unreachable, and a key with `tenant=default` finds them on disk. Real
//! `semantic serve` processes, real model, real files, real SIGTERM.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::serve_process::Serve;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

const AGENT: &str = "old-agent";

async fn stop(mut serve: Serve) {
    serve.signal();
    let (status, _) = serve.exited(Duration::from_secs(60)).await;
    assert!(status.success(), "{}", serve.log_text());
}

fn turn_body() -> Value {
    json!({"model": "default", "temperature": 0, "max_tokens": 4, "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Name three colours of the rainbow."}
    ]})
}

async fn turn(serve: &Serve, key: Option<&str>) -> Value {
    let mut request = reqwest::Client::new()
        .post(serve.url("/v1/chat/completions"))
        .header("X-Agent-ID", AGENT)
        .json(&turn_body());
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["usage"].clone()
}

async fn agents(serve: &Serve, key: &str) -> Value {
    reqwest::Client::new()
        .get(serve.url("/v1/agents"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The only model directory under the cache.
fn model_dir(cache: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cache.join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_written_before_tenants_stay_usable_and_are_never_silently_lost() {
    let cache = tempfile::tempdir().unwrap();
    let serve = Serve::start(cache.path(), &[]).await;
    turn(&serve, None).await;
    stop(serve).await;

    // Put the file where a server before tenants kept it.
    let model = model_dir(cache.path());
    let current = model.join(format!("tenants/default/agents/{AGENT}.safetensors"));
    let legacy_dir = model.join("agents");
    std::fs::create_dir_all(&legacy_dir).unwrap();
    let legacy = legacy_dir.join(format!("{AGENT}.safetensors"));
    std::fs::rename(&current, &legacy).unwrap();

    // Keys, none of tenant `default`: the agent is moved, kept, and reported.
    let serve = Serve::start(cache.path(), &["--api-key", "sk-new"]).await;
    assert!(current.is_file() && !legacy.exists(), "not migrated");
    assert_eq!(agents(&serve, "sk-new").await["data"], json!([]));
    let log = serve.log_text();
    assert!(
        log.contains("moved agent files written before tenants"),
        "{log}"
    );
    assert!(
        log.contains("unreachable") && log.contains("tenant=default"),
        "{log}"
    );
    stop(serve).await;

    // A key of tenant `default` finds the agent on disk and reuses it.
    let keys = cache.path().join("keys.txt");
    std::fs::write(&keys, "sk-old tenant=default\n").unwrap();
    let serve = Serve::start(cache.path(), &["--api-key-file", keys.to_str().unwrap()]).await;
    let listed = agents(&serve, "sk-old").await;
    assert_eq!(listed["data"][0]["id"], AGENT, "{listed}");
    assert_eq!(listed["data"][0]["tenant"], "default", "{listed}");
    assert!(!serve.log_text().contains("unreachable"));
    let usage = turn(&serve, Some("sk-old")).await;
    assert_eq!(usage["cache_source"], "disk", "{usage}");
    stop(serve).await;
}
