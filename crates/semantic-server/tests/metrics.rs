//! `GET /metrics` after real traffic on the real model: requests by route
//! template and status, first-token time by cache source, reused tokens,
//! engine gauges, and the disk tier (evictions, persist, load, corrupt file).
//!
//! The recorder is process-global, so everything runs in one test and
//! asserts deltas between two scrapes.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use semantic_domain::persistence::AgentPersistence;
use semantic_domain::AgentId;
use semantic_engine::system_info::llama_build_info;
use semantic_engine::EngineHandle;
use semantic_store::{Compat, DiskStore, StorePersistence};
use serde_json::{json, Value};
use support::{engine_config, model_path, TestServer};

/// One sample line: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The Prometheus text format, just enough of it: `name{k="v",...} value`.
struct Scrape(Vec<Sample>);

impl Scrape {
    fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                    None => (series, BTreeMap::new()),
                };
                Sample {
                    name: name.to_owned(),
                    labels,
                    value: value.parse().unwrap(),
                }
            })
            .collect();
        Self(samples)
    }

    /// Sum of the series of `name` carrying every label in `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|s| s.name == name)
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.0.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }
}

/// `k="v",k2="v2"` (our label values never hold quotes or commas).
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

async fn scrape(server: &TestServer) -> Scrape {
    let response = server.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    Scrape::parse(&response.text().await.unwrap())
}

/// An engine with a disk tier in `dir`, served over HTTP.
async fn start(dir: &Path) -> (TestServer, Arc<StorePersistence>) {
    let fingerprint = semantic_engine::fingerprint::model_fingerprint(&model_path()).unwrap();
    let config = engine_config();
    let compat = Compat {
        model_fingerprint: fingerprint.clone(),
        engine_build: llama_build_info().fingerprint(),
        kv_type: config.kv_type,
    };
    let store = DiskStore::open(dir, &fingerprint).unwrap();
    let persistence = Arc::new(StorePersistence::new(Arc::new(store), compat).unwrap());
    let port: Arc<dyn AgentPersistence> = persistence.clone();
    let engine = tokio::task::spawn_blocking(move || {
        EngineHandle::start_with(config, Some(port), |_| {}).unwrap()
    })
    .await
    .unwrap();
    (TestServer::serve(engine).await, persistence)
}

const SYSTEM: &str = "You are a helpful assistant. Answer in one short sentence.";

/// One chat turn of `agent` over `history`; returns the reply and usage.
async fn turn(server: &TestServer, agent: &str, history: &[Value]) -> (String, Value) {
    let body = json!({
        "model": "default",
        "messages": history,
        "max_tokens": 8,
        "temperature": 0,
    });
    let response = server
        .client
        .post(server.url("/v1/chat/completions"))
        .header("X-Agent-ID", agent)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let reply = body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    (reply, body["usage"].clone())
}

/// A conversation that grows by one question per turn.
struct Conversation {
    agent: &'static str,
    history: Vec<Value>,
}

impl Conversation {
    fn new(agent: &'static str) -> Self {
        Self {
            agent,
            history: vec![json!({"role": "system", "content": SYSTEM})],
        }
    }

    async fn ask(&mut self, server: &TestServer, question: &str) -> Value {
        self.history
            .push(json!({"role": "user", "content": question}));
        let (reply, usage) = turn(server, self.agent, &self.history).await;
        self.history
            .push(json!({"role": "assistant", "content": reply}));
        usage
    }
}

async fn evict_to_disk(server: &TestServer, agent: &str) {
    let response = server
        .client
        .post(server.url(&format!("/v1/agents/{agent}/evict")))
        .json(&json!({"tier": "disk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

/// Wait (bounded) until the writer has put `agent`'s file in place.
async fn written(persistence: &StorePersistence, agent: &str) -> std::path::PathBuf {
    let path = persistence
        .store()
        .path_for(&semantic_domain::AgentKey::open(
            AgentId::parse(agent).unwrap(),
        ));
    for _ in 0..200 {
        persistence.writer().flush();
        if path.is_file() {
            return path;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never written", path.display());
}

fn delta(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.sum(name, labels) - before.sum(name, labels)
}

const EVERY_METRIC: &[&str] = &[
    "semantic_requests_total",
    "semantic_request_duration_seconds_count",
    "semantic_time_to_first_token_seconds_bucket",
    "semantic_inter_token_latency_seconds_count",
    "semantic_request_queue_depth",
    "semantic_request_queue_capacity",
    "semantic_requests_running",
    "semantic_batch_size_bucket",
    "semantic_prompt_tokens_total",
    "semantic_prompt_tokens_cached_total",
    "semantic_generation_tokens_total",
    "semantic_tokens_per_second",
    "semantic_kv_pool_blocks",
    "semantic_kv_pool_utilization_ratio",
    "semantic_agents",
    "semantic_cache_evictions_total",
    "semantic_cache_persist_duration_seconds_count",
    "semantic_cache_load_duration_seconds_count",
    "semantic_cache_corrupt_total",
    "semantic_model_load_duration_seconds",
    "semantic_memory_resident_bytes",
    "semantic_build_info",
    "semantic_engine_last_step_age_seconds",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_real_traffic() {
    // As `semantic serve` does: before the engine, so nothing is missed.
    semantic_server::telemetry::prometheus::install();
    let dir = tempfile::tempdir().unwrap();
    let (server, persistence) = start(dir.path()).await;
    let before = scrape(&server).await;

    // Agent A: cold, then hot, then evicted to disk and loaded back.
    let mut a = Conversation::new("metrics-a");
    let cold = a.ask(&server, "Name one colour of the sky.").await;
    assert_eq!(cold["cache_source"], "cold");
    let hot = a.ask(&server, "And one colour of grass?").await;
    assert_eq!(hot["cache_source"], "hot");
    let reused = hot["prompt_tokens_details"]["cached_tokens"]
        .as_f64()
        .unwrap();
    assert!(reused > 0.0);
    written(&persistence, "metrics-a").await;
    evict_to_disk(&server, "metrics-a").await;
    let disk = a.ask(&server, "And one colour of snow?").await;
    assert_eq!(disk["cache_source"], "disk");

    // Agent B: its file is damaged while it sits on disk.
    let mut b = Conversation::new("metrics-b");
    b.ask(&server, "Name one animal that swims.").await;
    let path = written(&persistence, "metrics-b").await;
    evict_to_disk(&server, "metrics-b").await;
    std::fs::write(&path, b"not a safetensors file").unwrap();
    let recomputed = b.ask(&server, "And one that flies?").await;
    assert_eq!(recomputed["cache_source"], "cold");

    // A 400, a 404 route, and an agent path that must not become a label.
    let bad = server.chat(&json!({"model": "default"})).await;
    assert_eq!(bad.status(), 400);
    assert_eq!(server.get("/no/such/route").await.status(), 404);
    assert_eq!(server.get("/v1/agents/some-agent").await.status(), 404);
    assert_eq!(server.get("/v1/agents/metrics-a").await.status(), 200);

    let after = scrape(&server).await;
    for name in EVERY_METRIC {
        assert!(after.has(name), "{name} missing");
    }
    let chat = "/v1/chat/completions";
    let d = |name: &str, labels: &[(&str, &str)]| delta(&before, &after, name, labels);
    let requests = "semantic_requests_total";
    assert_eq!(d(requests, &[("route", chat), ("status", "200")]), 5.0);
    assert_eq!(d(requests, &[("route", chat), ("status", "400")]), 1.0);
    assert_eq!(
        d(requests, &[("route", "unmatched"), ("status", "404")]),
        1.0
    );
    assert_eq!(
        d(requests, &[("route", "/v1/agents/{id}"), ("status", "404")]),
        1.0
    );
    assert_eq!(
        d(requests, &[("route", "/v1/agents/{id}"), ("status", "200")]),
        1.0
    );
    assert_eq!(
        d(
            requests,
            &[("route", "/v1/agents/{id}/evict"), ("status", "200")]
        ),
        2.0
    );
    assert!(
        after
            .0
            .iter()
            .all(|s| s.labels.values().all(|v| !v.contains("some-agent")
                && !v.contains("metrics-a")
                && !v.contains("/no/such"))),
        "a raw path became a label"
    );
    assert!(
        d(
            "semantic_request_duration_seconds_count",
            &[("route", chat)]
        ) >= 6.0
    );

    // First-token time by cache source, and the tokens behind it.
    let ttft = "semantic_time_to_first_token_seconds_count";
    assert!(d(ttft, &[("cache_source", "cold")]) >= 2.0);
    assert_eq!(d(ttft, &[("cache_source", "hot")]), 1.0);
    assert_eq!(d(ttft, &[("cache_source", "disk")]), 1.0);
    assert_eq!(
        d("semantic_prompt_tokens_cached_total", &[("source", "hot")]),
        reused
    );
    assert!(d("semantic_prompt_tokens_total", &[]) > 0.0);
    assert!(d("semantic_generation_tokens_total", &[]) >= 5.0);
    assert!(d("semantic_inter_token_latency_seconds_count", &[]) > 0.0);
    assert!(d("semantic_batch_size_count", &[]) > 0.0);

    // The disk tier: two hot → warm → disk moves, files written and read
    // back, one of them found corrupt.
    let evictions = "semantic_cache_evictions_total";
    assert_eq!(d(evictions, &[("from", "hot"), ("to", "warm")]), 2.0);
    assert_eq!(d(evictions, &[("from", "warm"), ("to", "disk")]), 2.0);
    assert!(d("semantic_cache_persist_duration_seconds_count", &[]) >= 2.0);
    assert_eq!(d("semantic_cache_load_duration_seconds_count", &[]), 2.0);
    assert_eq!(d("semantic_cache_corrupt_total", &[]), 1.0);

    // Gauges.
    let snapshot = server.engine.snapshot().await.unwrap();
    let pool = "semantic_kv_pool_blocks";
    assert_eq!(
        after.sum(pool, &[("state", "used")]) + after.sum(pool, &[("state", "free")]),
        f64::from(snapshot.pool_total_blocks)
    );
    let utilization = after.sum("semantic_kv_pool_utilization_ratio", &[]);
    assert!((0.0..=1.0).contains(&utilization));
    assert!(after.sum("semantic_agents", &[("tier", "hot")]) >= 1.0);
    assert_eq!(
        after.sum(
            "semantic_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(
        after.sum("semantic_request_queue_capacity", &[]),
        engine_config().queue_capacity as f64
    );
    assert_eq!(after.sum("semantic_request_queue_depth", &[]), 0.0);
    assert!(after.sum("semantic_model_load_duration_seconds", &[]) > 0.0);
    assert!(after.sum("semantic_memory_resident_bytes", &[]) > 1e6);
    assert!(after.sum("semantic_engine_last_step_age_seconds", &[]) < 5.0);
    server.shutdown().await;
}
