//! How `max_tokens` is resolved, over real HTTP against the real model:
//! the default bounds a request that names none, `--max-tokens-cap` clamps
//! (finish reason `length` / stop reason `max_tokens`) or, strict, refuses
//! naming the limit, and a request asking for more than the context window
//! has left is clamped to it (refused only when strict). Both API families.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::anthropic::{assert_anthropic_error, total_input};
use support::*;

use semantic_domain::MaxTokensPolicy;
use serde_json::{json, Value};

/// SmolLM2 counts on well past a few tokens (measured); with `ignore_eos`
/// (OpenAI only) nothing but a limit ends it.
const COUNTING: &str = "Count from 1 to 20, separated by commas.";

fn server_with(policy: MaxTokensPolicy) -> semantic_engine::EngineConfig {
    let mut config = engine_config();
    config.max_tokens = policy;
    config
}

/// An OpenAI body that only a token limit ends; `limit` is merged in.
fn openai_body(limit: Value) -> Value {
    let mut body = json!({
        "model": "default",
        "messages": [{"role": "user", "content": COUNTING}],
        "temperature": 0,
        "ignore_eos": true,
    });
    for (key, value) in limit.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

fn anthropic_body(max_tokens: u32) -> Value {
    json!({
        "model": "default",
        "messages": [{"role": "user", "content": COUNTING}],
        "temperature": 0,
        "max_tokens": max_tokens,
    })
}

async fn chat_ok(server: &TestServer, body: &Value) -> Value {
    let response = server.chat(body).await;
    assert_eq!(response.status(), 200, "{body}");
    response.json().await.unwrap()
}

/// (completion tokens, finish reason) of an OpenAI reply.
fn openai_outcome(reply: &Value) -> (u64, &str) {
    (
        reply["usage"]["completion_tokens"].as_u64().unwrap(),
        reply["choices"][0]["finish_reason"].as_str().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_max_tokens_is_bounded_by_the_default() {
    let server = TestServer::start_with(server_with(MaxTokensPolicy {
        default: 8,
        ..MaxTokensPolicy::default()
    }))
    .await;
    let reply = chat_ok(&server, &openai_body(json!({}))).await;
    assert_eq!(openai_outcome(&reply), (8, "length"), "{reply}");

    // Streamed the same way: eight tokens, then `length`.
    let mut body = openai_body(json!({}));
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = server.chat(&body).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains(r#""finish_reason":"length""#), "{text}");
    assert!(text.contains(r#""completion_tokens":8"#), "{text}");

    // A request's own limit above the default is honoured.
    let reply = chat_ok(&server, &openai_body(json!({"max_tokens": 12}))).await;
    assert_eq!(openai_outcome(&reply), (12, "length"), "{reply}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_cap_is_clamped_with_the_length_finish_reason() {
    let server = TestServer::start_with(server_with(MaxTokensPolicy {
        default: 6,
        cap: Some(6),
        strict: false,
    }))
    .await;
    for limit in [
        json!({"max_tokens": 1000}),
        json!({"max_completion_tokens": 1000}),
    ] {
        let reply = chat_ok(&server, &openai_body(limit.clone())).await;
        assert_eq!(openai_outcome(&reply), (6, "length"), "{limit}: {reply}");
    }
    let reply = server.message_ok(&anthropic_body(1000), None).await;
    assert_eq!(reply["usage"]["output_tokens"], 6, "{reply}");
    assert_eq!(reply["stop_reason"], "max_tokens", "{reply}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_refuses_over_the_cap_with_a_400_naming_the_limit() {
    let server = TestServer::start_with(server_with(MaxTokensPolicy {
        default: 6,
        cap: Some(6),
        strict: true,
    }))
    .await;
    for (limit, param) in [
        (json!({"max_tokens": 7}), "max_tokens"),
        (json!({"max_completion_tokens": 7}), "max_completion_tokens"),
    ] {
        let r = server.chat(&openai_body(limit)).await;
        let body = assert_error(
            r,
            400,
            "invalid_request_error",
            "limit of 6 tokens per request (--max-tokens-cap)",
            Some(param),
        )
        .await;
        assert_eq!(body["error"]["code"], "max_tokens_over_cap", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{param} 7 ")), "{message}");
    }
    let r = server.messages(&anthropic_body(7)).await;
    assert_anthropic_error(
        r,
        400,
        "invalid_request_error",
        &["max_tokens 7", "limit of 6", "--max-tokens-cap"],
    )
    .await;

    // At the cap, and without a limit (the default), requests are served.
    let reply = chat_ok(&server, &openai_body(json!({"max_tokens": 6}))).await;
    assert_eq!(openai_outcome(&reply), (6, "length"), "{reply}");
    let reply = chat_ok(&server, &openai_body(json!({}))).await;
    assert_eq!(openai_outcome(&reply), (6, "length"), "{reply}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_refuses_more_than_the_window_has_left() {
    let server = TestServer::start_with(server_with(MaxTokensPolicy {
        strict: true,
        ..MaxTokensPolicy::default()
    }))
    .await;
    let r = server
        .chat(&openai_body(json!({"max_tokens": 4_000_000})))
        .await;
    let body = assert_error(
        r,
        400,
        "invalid_request_error",
        "tokens left in the context window",
        Some("max_tokens"),
    )
    .await;
    assert_eq!(body["error"]["code"], "context_length_exceeded", "{body}");
    let r = server.messages(&anthropic_body(4_000_000)).await;
    assert_anthropic_error(
        r,
        400,
        "invalid_request_error",
        &["max_tokens 4000000", "tokens left in the context window"],
    )
    .await;
    server.shutdown().await;
}

/// A client like Claude Code asks for 32,000 output tokens whatever the
/// window holds: on a 256-token window the request is served, clamped to
/// what the window has left, and ends with `length` / `max_tokens`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_the_window_has_left_is_clamped_to_it() {
    let mut config = engine_config();
    config.context_tokens = 256;
    let server = TestServer::start_with(config).await;
    let window = u64::from(server.engine.context_window());
    assert_eq!(window, 256);

    let reply = chat_ok(&server, &openai_body(json!({"max_tokens": 32_000}))).await;
    let usage = &reply["usage"];
    let prompt = usage["prompt_tokens"].as_u64().unwrap();
    assert_eq!(
        openai_outcome(&reply),
        (window - prompt, "length"),
        "{reply}"
    );

    let r = server.messages(&anthropic_body(32_000)).await;
    assert_eq!(r.status(), 200);
    let reply: Value = r.json().await.unwrap();
    let output = reply["usage"]["output_tokens"].as_u64().unwrap();
    let input = total_input(&reply["usage"]);
    assert!(input + output <= window, "{reply}");
    let reason = reply["stop_reason"].as_str().unwrap();
    assert!(["end_turn", "max_tokens"].contains(&reason), "{reply}");
    if reason == "max_tokens" {
        assert_eq!(input + output, window, "{reply}");
    }
    server.shutdown().await;
}
