//! The server through its life over real HTTP with the real model: probes
//! and 503s while starting, request ids on every response, and draining
//! that refuses new work while the request in flight runs to completion.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use semantic_engine::{EngineError, EngineHandle};
use semantic_server::{ProbeSettings, Server, ServerConfig};
use serde_json::{json, Value};
use support::engine_config;
use tokio::net::TcpListener;

struct Harness {
    server: Arc<Server>,
    base: String,
    client: reqwest::Client,
}

/// A server listening before any engine exists, like `semantic serve`.
async fn listening() -> Harness {
    listening_with(ProbeSettings::default()).await
}

async fn listening_with(probes: ProbeSettings) -> Harness {
    let server = Arc::new(Server::new(ServerConfig::default(), probes));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(semantic_server::serve_router(
        listener,
        server.router(),
        std::future::pending(),
    ));
    Harness {
        server,
        base,
        client: reqwest::Client::new(),
    }
}

impl Harness {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn chat(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/chat/completions", self.base))
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

async fn start_engine() -> EngineHandle {
    tokio::task::spawn_blocking(|| EngineHandle::start(engine_config(), |_| {}))
        .await
        .unwrap()
        .unwrap()
}

fn hello(agent: &str, max_tokens: u32) -> Value {
    json!({
        "model": "default",
        "messages": [{"role": "user", "content": "Tell me a long story about a lighthouse."}],
        "max_tokens": max_tokens, "temperature": 0, "ignore_eos": true,
        "session_id": agent, "stream": true,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_api_answer_503_until_the_engine_is_started() {
    let h = listening().await;
    let (status, body) = h.get("/health/startup").await;
    assert_eq!((status, body["status"].as_str()), (503, Some("starting")));
    let (status, body) = h.get("/health/ready").await;
    assert_eq!(status, 503);
    assert_eq!(body["failing"], json!(["starting"]));
    assert_eq!(
        h.get("/health/live").await.0,
        200,
        "loading is not a liveness failure"
    );
    let r = h
        .client
        .get(format!("{}/v1/models", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "starting");

    let engine = start_engine().await;
    h.server.start(engine.clone(), None);
    let (status, body) = h.get("/health/startup").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("started")));
    let (status, body) = h.get("/health/ready").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["checks"]["kv_pool"]["total_blocks"],
        json!(engine.config().total_blocks())
    );
    let (status, body) = h.get("/health/live").await;
    assert_eq!(status, 200);
    assert!(body["engine_heartbeat_age_seconds"].as_f64().unwrap() < 5.0);
    assert_eq!(h.get("/v1/models").await.0, 200);
    engine.shutdown();
}

/// A scheduler that admits nothing while a request waits fails liveness
/// (and readiness) within the stall timeout, though the engine thread
/// keeps looping and so keeps its heartbeat young; it recovers nothing by
/// itself, so an orchestrator must restart it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_that_admits_nothing_fails_liveness_within_the_stall_timeout() {
    let stall = Duration::from_secs(2);
    let h = listening_with(ProbeSettings {
        engine_stall: stall,
        ..ProbeSettings::default()
    })
    .await;
    let mut config = engine_config();
    config.stall_admission_for_tests = true;
    let engine = tokio::task::spawn_blocking(move || EngineHandle::start(config, |_| {}))
        .await
        .unwrap()
        .unwrap();
    h.server.start(engine.clone(), None);
    assert_eq!(h.get("/health/live").await.0, 200, "nothing waits yet");
    let mut whole = hello("stuck", 4);
    whole["stream"] = json!(false);
    let stuck = h.chat(&whole);
    let probe = async {
        let started = std::time::Instant::now();
        loop {
            let (status, body) = h.get("/health/live").await;
            if status == 503 {
                return (started.elapsed(), body);
            }
            assert!(
                started.elapsed() < stall * 5,
                "liveness never failed: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (after, body) = tokio::select! {
        r = stuck => panic!("the stuck request answered: {}", r.status()),
        p = probe => p,
    };
    assert!(
        after >= stall - Duration::from_millis(500),
        "failed too early: {after:?}"
    );
    assert_eq!(body["status"], "engine_no_progress", "{body}");
    assert!(
        body["engine_heartbeat_age_seconds"].as_f64().unwrap() < 2.0,
        "{body}"
    );
    assert!(
        body["engine_waiting_without_progress_seconds"]
            .as_f64()
            .unwrap()
            > stall.as_secs_f64(),
        "{body}"
    );
    let (status, ready) = h.get("/health/ready").await;
    assert_eq!(status, 503);
    assert!(
        ready["failing"]
            .as_array()
            .unwrap()
            .contains(&json!("engine_no_progress")),
        "{ready}"
    );
    let metrics = h
        .client
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let no_room = metrics
        .lines()
        .find(|l| l.starts_with("semantic_admission_no_room_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert!(
        no_room.is_some_and(|n| n > 0.0),
        "no-room admissions not counted"
    );
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_request_and_correlation_ids() {
    let h = listening().await;
    h.server.start(start_engine().await, None);
    // Echoed when sent.
    let r = h
        .client
        .get(format!("{}/v1/models", h.base))
        .header("x-request-id", "req-42")
        .header("x-correlation-id", "flow-7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-42");
    assert_eq!(r.headers()["x-correlation-id"], "flow-7");
    // Generated when absent, on errors too; the correlation id defaults to it.
    let r = h
        .client
        .get(format!("{}/nope", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 32, "a fresh UUID: {id}");
    assert_eq!(r.headers()["x-correlation-id"], id.as_str());
    let bad = h.chat(&json!({"model": "default", "messages": []})).await;
    assert_eq!(bad.status().as_u16(), 400);
    assert!(bad.headers().contains_key("x-request-id"));
    // An unusable client id (too long) is replaced, not echoed.
    let long = "x".repeat(300);
    let r = h
        .client
        .get(format!("{}/health/live", h.base))
        .header("x-request-id", &long)
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], long.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_refuses_new_requests_and_lets_the_stream_in_flight_finish() {
    let h = listening().await;
    let engine = start_engine().await;
    h.server.start(engine.clone(), None);
    let stream = h.chat(&hello("drain-stream", 48)).await;
    assert_eq!(stream.status().as_u16(), 200);
    let mut body = stream.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));

    h.server.begin_drain();
    let (status, ready) = h.get("/health/ready").await;
    assert_eq!(status, 503);
    assert_eq!(ready["failing"], json!(["draining"]));
    assert_eq!(h.get("/health/live").await.0, 200);
    let refused = h.chat(&hello("late", 4)).await;
    assert_eq!(refused.status().as_u16(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let envelope: Value = refused.json().await.unwrap();
    assert_eq!(envelope["error"]["code"], "shutting_down");
    // The engine refuses on its own too, with a typed error: no request can
    // slip in between the HTTP check and the drain.
    let direct = engine.submit(semantic_domain::GenerateRequest::new(
        vec![1, 2, 3],
        semantic_domain::SamplingParams::greedy(1),
        None,
    ));
    assert!(matches!(direct, Err(EngineError::Draining)));

    let mut text = String::from_utf8_lossy(&first).into_owned();
    while let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(text.contains("\"finish_reason\":\"length\""));
    tokio::time::timeout(Duration::from_secs(10), engine.drained())
        .await
        .expect("nothing left in flight once the stream ended");
    assert_eq!(engine.in_flight(), 0);
    engine.shutdown();
}
