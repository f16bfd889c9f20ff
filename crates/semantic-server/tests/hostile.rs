//! Hostile and out-of-bounds input over real HTTP against the real model:
//! every client error is a 4xx in the error envelope (never a 500, never a
//! panic), limits answer 413/429/503 with the right headers, and the server
//! still answers a normal request afterwards.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::*;

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use semantic_server::{AuthConfig, RateLimitConfig, RequestLimits, ServerConfig};
use serde_json::{json, Value};

const INVALID: &str = "invalid_request_error";

impl TestServer {
    async fn post_bytes(&self, path: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn assert_still_answers(&self) {
        let r = self.chat(&short_chat(2)).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
}

/// A 400 in the envelope; `param` checked when given.
async fn assert_400(response: reqwest::Response, param: Option<&str>, case: &str) -> Value {
    assert_eq!(response.status(), 400, "{case}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], INVALID, "{case}: {body}");
    if let Some(param) = param {
        assert_eq!(body["error"]["param"], param, "{case}: {body}");
    }
    body
}

fn user(content: &str) -> Value {
    json!([{"role": "user", "content": content}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_mistyped_and_out_of_range_bodies_are_400_naming_the_field() {
    let server = TestServer::start().await;
    let msgs = user("hi");
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("malformed", b"{\"model\": ".to_vec(), None),
        ("missing model", json!({"messages": msgs}).to_string().into(), Some("model")),
        ("missing messages", br#"{"model":"default"}"#.to_vec(), Some("messages")),
        ("model wrong type", json!({"model": 5, "messages": msgs}).to_string().into(), Some("model")),
        ("messages wrong type", br#"{"model":"default","messages":"hi"}"#.to_vec(), Some("messages")),
        ("temperature range", json!({"model": "default", "messages": msgs, "temperature": 5}).to_string().into(), Some("temperature")),
        ("top_p range", json!({"model": "default", "messages": msgs, "top_p": 0}).to_string().into(), Some("top_p")),
        ("unknown model", json!({"model": "gpt-9", "messages": msgs}).to_string().into(), Some("model")),
        ("max_tokens 1e400", br#"{"model":"default","messages":[{"role":"user","content":"hi"}],"max_tokens":1e400}"#.to_vec(), None),
        ("max_tokens u64 overflow", br#"{"model":"default","messages":[{"role":"user","content":"hi"}],"max_tokens":18446744073709551616}"#.to_vec(), None),
        ("max_tokens negative", br#"{"model":"default","messages":[{"role":"user","content":"hi"}],"max_tokens":-1}"#.to_vec(), Some("max_tokens")),
        ("seed overflow", br#"{"model":"default","messages":[{"role":"user","content":"hi"}],"seed":99999999999999999999999}"#.to_vec(), None),
        ("invalid utf-8", b"{\"model\":\"default\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}".to_vec(), None),
        ("deeply nested", "[".repeat(100_000).into_bytes(), None),
        ("deeply nested in a field", format!("{{\"model\":\"default\",\"messages\":{}", "[".repeat(100_000)).into_bytes(), None),
    ];
    for (case, body, param) in cases {
        let r = server.post_bytes("/v1/chat/completions", body).await;
        assert_400(r, param, case).await;
    }
    server.assert_still_answers().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_like_agent_names_map_to_safe_ids_and_paths_are_400() {
    let server = TestServer::start().await;
    // In a header or a body field, a value that is not an agent id is the
    // client's key for its conversation: it names a derived, valid id (never
    // a path), the same one every time.
    for bad in ["../x", "a/b", "..", "..%2Fx", "a\\b"] {
        let expected = semantic_server::agent_id::agent_for(bad);
        let r = server
            .client
            .post(server.url("/v1/chat/completions"))
            .header("x-agent-id", bad)
            .json(&short_chat(2))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{bad}: {}", r.text().await.unwrap());
        let mut body = short_chat(2);
        body["session_id"] = json!(bad);
        assert_eq!(server.chat(&body).await.status(), 200, "{bad}");
        let path = format!("/v1/agents/{}", expected.as_str());
        let r = server.get(&path).await;
        assert_eq!(r.status(), 200, "{bad} -> {path}");
    }
    let agents: Value = server.get("/v1/agents").await.json().await.unwrap();
    let count = agents["data"].as_array().map(Vec::len);
    assert_eq!(
        count,
        Some(5),
        "header and body of one value name one agent: {agents}"
    );
    // A bare `%2e%2e` segment is resolved to `..` by the client's URL parser
    // (WHATWG rules) before it is sent, so the encoded cases carry a slash.
    for encoded in [
        "..%2Fx",
        "a%2Fb",
        "%2e%2e%2fx",
        "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "%ff",
    ] {
        let path = format!("/v1/agents/{encoded}");
        let r = server.get(&path).await;
        let body = assert_400(r, None, &path).await;
        assert_eq!(body["error"]["code"], "invalid_agent_id", "{body}");
        let r = server.delete(&path).await;
        assert_400(r, None, &path).await;
    }
    server.assert_still_answers().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_messages_is_400_naming_messages() {
    let config = ServerConfig {
        limits: RequestLimits {
            max_messages: 3,
            ..RequestLimits::default()
        },
        ..ServerConfig::default()
    };
    let server = TestServer::start_custom(engine_config(), config, None).await;
    let turns: Vec<Value> = (0..4)
        .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": "hi"}))
        .collect();
    let r = server
        .chat(&json!({"model": "default", "messages": turns}))
        .await;
    let body = assert_400(r, Some("messages"), "4 messages").await;
    assert_eq!(body["error"]["code"], "too_many_messages");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--max-messages"));
    let three = json!({"model": "default", "messages": turns[..3], "max_tokens": 2});
    assert_eq!(server.chat(&three).await.status(), 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabyte_body_is_413_and_unknown_routes_404_405() {
    let server = TestServer::start().await;
    let huge = format!(
        "{{\"model\":\"default\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "x".repeat(10 * 1024 * 1024)
    );
    let r = server
        .post_bytes("/v1/chat/completions", huge.into_bytes())
        .await;
    assert_envelope(r, 413, INVALID, Some("request_too_large")).await;
    assert_envelope(
        server.get("/v1/../../etc/passwd").await,
        404,
        INVALID,
        Some("unknown_url"),
    )
    .await;
    assert_envelope(server.get("/v1/chat/completions").await, 405, INVALID, None).await;
    let r = server.delete("/v1/models").await;
    assert_envelope(r, 405, INVALID, None).await;
    server.assert_still_answers().await;
    server.shutdown().await;
}

fn per_minute(n: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_rate_is_429_with_retry_after_and_health_is_never_limited() {
    let config = ServerConfig {
        auth: AuthConfig::new(["k1", "k2"], None).unwrap(),
        rate_limits: RateLimitConfig {
            per_key_per_minute: per_minute(60),
            burst: per_minute(2),
            ..RateLimitConfig::default()
        },
        ..ServerConfig::default()
    };
    let server = TestServer::start_custom(engine_config(), config, None).await;
    let models = |key: &'static str| {
        server
            .client
            .get(server.url("/v1/models"))
            .header("x-api-key", key)
            .send()
    };
    assert_eq!(models("k1").await.unwrap().status(), 200);
    assert_eq!(models("k1").await.unwrap().status(), 200);
    let r = models("k1").await.unwrap();
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_envelope(r, 429, "rate_limit_error", Some("rate_limited")).await;
    // Another key has its own bucket; probes have none.
    assert_eq!(models("k2").await.unwrap().status(), 200);
    for _ in 0..5 {
        assert_eq!(server.get("/health/live").await.status(), 200);
    }
    // Bucket refills at one per second.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(models("k1").await.unwrap().status(), 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_over_its_rate_is_429_whichever_way_it_is_named() {
    let config = ServerConfig {
        rate_limits: RateLimitConfig {
            per_agent_per_minute: per_minute(1),
            ..RateLimitConfig::default()
        },
        ..ServerConfig::default()
    };
    let server = TestServer::start_custom(engine_config(), config, None).await;
    let mut body = short_chat(2);
    body["session_id"] = json!("limited");
    assert_eq!(server.chat(&body).await.status(), 200);
    let r = server
        .client
        .post(server.url("/v1/chat/completions"))
        .header("x-agent-id", "limited")
        .json(&short_chat(2))
        .send()
        .await
        .unwrap();
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((55..=60).contains(&retry), "Retry-After {retry}");
    let env = assert_envelope(r, 429, "rate_limit_error", Some("rate_limited")).await;
    assert!(env["error"]["message"]
        .as_str()
        .unwrap()
        .contains("per agent"));
    body["session_id"] = json!("another");
    assert_eq!(server.chat(&body).await.status(), 200);
    // Anonymous requests have no agent bucket.
    server.assert_still_answers().await;
    server.assert_still_answers().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_streaming_generation_cut_by_shutdown_is_503_not_500() {
    let server = TestServer::start().await;
    let long = json!({
        "model": "default",
        "messages": user("Count from 1 to 1000, separated by commas."),
        "temperature": 0,
        "max_tokens": 2000,
    });
    let pending = tokio::spawn({
        let request = server
            .client
            .post(server.url("/v1/chat/completions"))
            .json(&long);
        async move { request.send().await.unwrap() }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while server
        .engine
        .counters()
        .sampled_tokens
        .load(std::sync::atomic::Ordering::Relaxed)
        < 3
    {
        assert!(Instant::now() < deadline, "generation never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let engine = server.engine.clone();
    tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .unwrap();
    let r = pending.await.unwrap();
    assert!(r.headers().contains_key("retry-after"));
    assert_envelope(r, 503, "server_error", Some("engine_unavailable")).await;
    server.shutdown().await;
}
