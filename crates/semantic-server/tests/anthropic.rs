//! The Anthropic Messages API, real model, real HTTP: each test starts the
//! engine on SmolLM2-135M, serves it on 127.0.0.1 with a port chosen at run
//! time and talks to `/v1/messages*` with reqwest as a client would.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::anthropic::{assert_anthropic_error, total_input, usage_count};
use support::engine_checks::{sampled_tokens, shut_down_engine, wait_until_idle};
use support::prompts::{greedy_prompt_tokens, long_stream_body, QUESTION, SYSTEM};
use support::sse::{read_to_end, read_until, sse_events, ByteStream};
use support::*;

use std::time::Duration;

use serde_json::{json, Value};

/// SmolLM2's greedy answer lists "1. 1\n2. 2\n..." and runs on (measured).
const COUNTING: &str = "Count from 1 to 20, separated by commas.";

fn greedy_body(max_tokens: u32) -> Value {
    json!({
        "model": "default",
        "system": SYSTEM,
        "messages": [{"role": "user", "content": QUESTION}],
        "temperature": 0,
        "max_tokens": max_tokens,
    })
}

fn counting_body(max_tokens: u32) -> Value {
    json!({
        "model": "default",
        "messages": [{"role": "user", "content": COUNTING}],
        "temperature": 0,
        "max_tokens": max_tokens,
    })
}

fn text_of(message: &Value) -> &str {
    message["content"][0]["text"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_message_has_anthropics_shape_and_additive_usage() {
    let server = TestServer::start().await;
    let body = server.message_ok(&greedy_body(32), None).await;
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("msg_"), "{body}");
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], server.engine.model().info().id.as_str());
    let content = body["content"].as_array().unwrap();
    assert_eq!(content.len(), 1, "{body}");
    assert_eq!(content[0]["type"], "text");
    assert!(text_of(&body).contains("Paris"), "{body}");
    assert_eq!(body["stop_reason"], "end_turn", "{body}");
    assert!(body["stop_sequence"].is_null());

    let usage = &body["usage"];
    assert_eq!(total_input(usage), greedy_prompt_tokens(&server.engine));
    // Anonymous: nothing is kept, so nothing counts as cache creation.
    assert_eq!(
        usage_count(usage, "cache_creation_input_tokens"),
        0,
        "{usage}"
    );
    assert!(
        (1..=32).contains(&usage_count(usage, "output_tokens")),
        "{usage}"
    );
    assert_eq!(usage["cache_source"], "cold");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_events_come_in_anthropics_order_and_match_the_whole_answer() {
    let server = TestServer::start().await;
    let whole = server.message_ok(&greedy_body(32), None).await;
    let mut body = greedy_body(32);
    body["stream"] = json!(true);
    let response = server.messages(&body).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let events = sse_events(&response.text().await.unwrap());

    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let deltas = names.len() - 6;
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(std::iter::repeat_n("content_block_delta", deltas));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    assert!(deltas >= 1);
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str(), "{data}");
    }

    let start = &events[0].1["message"];
    assert!(start["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(start["content"], json!([]));
    assert!(start["stop_reason"].is_null());
    assert_eq!(usage_count(&start["usage"], "output_tokens"), 0);
    let prompt = greedy_prompt_tokens(&server.engine);
    assert_eq!(total_input(&start["usage"]), prompt);
    assert_eq!(
        events[1].1,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );

    let text: String = events[3..3 + deltas]
        .iter()
        .map(|(_, d)| {
            assert_eq!(d["index"], 0);
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, text_of(&whole));
    assert_eq!(events[3 + deltas].1["index"], 0);
    let delta = &events[4 + deltas].1;
    assert_eq!(delta["delta"]["stop_reason"], whole["stop_reason"]);
    assert!(delta["delta"]["stop_sequence"].is_null());
    assert_eq!(
        delta["usage"]["output_tokens"],
        whole["usage"]["output_tokens"]
    );
    assert_eq!(total_input(&delta["usage"]), prompt);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_sequences_and_max_tokens_set_the_stop_reason() {
    let server = TestServer::start().await;
    let mut body = counting_body(40);
    body["stop_sequences"] = json!(["never-said", "4."]);
    let stopped = server.message_ok(&body, None).await;
    assert_eq!(stopped["stop_reason"], "stop_sequence", "{stopped}");
    assert_eq!(stopped["stop_sequence"], "4.");
    let text = text_of(&stopped);
    assert!(text.contains("3.") && !text.contains("4."), "{text:?}");

    let cut = server.message_ok(&counting_body(3), None).await;
    assert_eq!(cut["stop_reason"], "max_tokens", "{cut}");
    assert!(cut["stop_sequence"].is_null());
    assert_eq!(cut["usage"]["output_tokens"], 3);

    // Streaming reports the matched string in message_delta.
    body["stream"] = json!(true);
    let events = sse_events(&server.messages(&body).await.text().await.unwrap());
    let (name, delta) = &events[events.len() - 2];
    assert_eq!(name, "message_delta");
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "stop_sequence", "stop_sequence": "4."})
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_second_turn_reads_its_cache_and_creates_only_new_tokens() {
    let server = TestServer::start().await;
    let first = server
        .message_ok(&greedy_body(16), Some("anthropic-agent"))
        .await;
    let usage = &first["usage"];
    let prompt1 = greedy_prompt_tokens(&server.engine);
    // The agent keeps its KV, so the whole cold prompt is cache creation.
    assert_eq!(usage_count(usage, "cache_read_input_tokens"), 0, "{usage}");
    assert_eq!(
        usage_count(usage, "cache_creation_input_tokens"),
        prompt1,
        "{usage}"
    );
    assert_eq!(usage_count(usage, "input_tokens"), 0, "{usage}");

    let mut second = greedy_body(16);
    second["messages"] = json!([
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": text_of(&first)},
        {"role": "user", "content": "And what is the capital of Italy?"},
    ]);
    let reply = server.message_ok(&second, Some("anthropic-agent")).await;
    let usage = &reply["usage"];
    let read = usage_count(usage, "cache_read_input_tokens");
    assert!(
        read >= prompt1 - 1,
        "first turn's prompt not reused: {usage}"
    );
    assert_eq!(usage["cache_source"], "hot");
    let prompt2 = server.count_tokens(&second).await;
    assert_eq!(
        usage_count(usage, "cache_creation_input_tokens"),
        prompt2 - read
    );
    assert_eq!(total_input(usage), prompt2);

    // metadata.user_id names an agent too: its fresh tokens are kept.
    let mut by_user = greedy_body(4);
    by_user["metadata"] = json!({"user_id": "user-7"});
    let usage = server.message_ok(&by_user, None).await["usage"].clone();
    assert!(
        usage_count(&usage, "cache_creation_input_tokens") > 0,
        "{usage}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_tokens_equals_the_input_of_a_real_call() {
    let server = TestServer::start().await;
    let mut body = greedy_body(8);
    body["system"] = json!([{"type": "text", "text": SYSTEM}]);
    body["tools"] = json!([{"name": "get_weather", "description": "Weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let real = server.message_ok(&body, None).await;
    let mut count_body = body.clone();
    count_body.as_object_mut().unwrap().remove("max_tokens");
    let counted = server.count_tokens(&count_body).await;
    assert_eq!(counted, total_input(&real["usage"]));
    // The tools are in the prompt (SmolLM2's template gets the fallback section).
    assert!(counted > greedy_prompt_tokens(&server.engine));
    server.shutdown().await;
}

const INVALID: &str = "invalid_request_error";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_anthropics_envelope_naming_the_field() {
    let server = TestServer::start().await;
    let mut missing = greedy_body(8);
    missing.as_object_mut().unwrap().remove("max_tokens");
    let r = server.messages(&missing).await;
    assert_anthropic_error(r, 400, INVALID, &["max_tokens: field required"]).await;

    let image = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}});
    let mut body = greedy_body(8);
    body["messages"] = json!([
        {"role": "user", "content": "a"},
        {"role": "user", "content": [image]},
    ]);
    let r = server.messages(&body).await;
    assert_anthropic_error(r, 400, INVALID, &["messages[1].content[0].type"]).await;

    body["messages"] = json!([{"role": "assistant", "content": "hi"}]);
    let r = server.messages(&body).await;
    assert_anthropic_error(r, 400, INVALID, &["messages[0].role"]).await;

    let truncated = r#"{"model": "default", "#.to_owned();
    let r = server
        .post_raw("/v1/messages", "application/json", truncated)
        .await;
    assert_anthropic_error(r, 400, INVALID, &["not valid JSON"]).await;

    let mut claude = greedy_body(8);
    claude["model"] = json!("claude-sonnet-4-5");
    let r = server.messages(&claude).await;
    assert_anthropic_error(r, 400, INVALID, &["unknown model \"claude-sonnet-4-5\""]).await;

    let mut hot = greedy_body(8);
    hot["temperature"] = json!(1.5);
    let r = server.messages(&hot).await;
    assert_anthropic_error(r, 400, INVALID, &["temperature must be between 0 and 1"]).await;

    // Not an agent id, so mapped to one (never a 400, never a path).
    let mut agent = greedy_body(8);
    agent["metadata"] = json!({"session_id": "../etc"});
    assert_eq!(server.messages(&agent).await.status(), 200);
    let mapped = semantic_server::agent_id::agent_for("../etc");
    let path = format!("/v1/agents/{}", mapped.as_str());
    assert_eq!(server.get(&path).await.status(), 200, "{path}");

    let r = server
        .post_raw("/v1/messages", "text/plain", "{}".into())
        .await;
    assert_anthropic_error(r, 415, INVALID, &["application/json"]).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framework_errors_under_v1_messages_use_anthropics_envelope_too() {
    let server = TestServer::start().await;
    let r = server.post_json("/v1/messages/x", &json!({}), None).await;
    assert_anthropic_error(r, 404, "not_found_error", &["/v1/messages/x"]).await;

    let r = server.get("/v1/messages").await;
    assert!(r.headers()["allow"].to_str().unwrap().contains("POST"));
    assert_anthropic_error(r, 405, INVALID, &["GET"]).await;

    let huge = "x".repeat(5 * 1024 * 1024);
    let mut body = greedy_body(8);
    body["messages"] = json!([{"role": "user", "content": huge}]);
    let r = server.messages(&body).await;
    assert_anthropic_error(r, 413, "request_too_large", &["exceeds"]).await;

    // Other routes keep the OpenAI envelope.
    let r = server.get("/v1/nope").await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_url", "{body}");
    assert!(body.get("type").is_none(), "{body}");
    server.shutdown().await;
}

/// Read SSE bytes until at least `n` text deltas have arrived.
async fn read_deltas(bytes: &mut impl ByteStream, n: usize) -> String {
    read_until(bytes, "event: content_block_delta", n).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_429_overloaded_error_with_retry_after() {
    let server = TestServer::start_with(one_slot_config()).await;
    let mut running = server.messages(&long_stream_body()).await.bytes_stream();
    read_deltas(&mut running, 2).await;
    let waiting = server.messages(&long_stream_body()).await;
    assert_eq!(waiting.status(), 200);

    let r = server.messages(&greedy_body(4)).await;
    assert_eq!(r.headers()["retry-after"], "1");
    assert_anthropic_error(r, 429, "overloaded_error", &["queue is full"]).await;
    drop((running, waiting));
    wait_until_idle(&server.engine, Duration::from_secs(10)).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_stream_cancels_its_generation() {
    let server = TestServer::start().await;
    let response = server.messages(&long_stream_body()).await;
    assert_eq!(response.status(), 200);
    let mut bytes = response.bytes_stream();
    let seen = read_deltas(&mut bytes, 4).await;
    assert!(
        !seen.contains("message_delta"),
        "finished too early: {seen}"
    );
    drop(bytes);

    wait_until_idle(&server.engine, Duration::from_secs(10)).await;
    let sampled = sampled_tokens(&server.engine);
    assert!(sampled < 1000, "ran on after disconnect: {sampled} tokens");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_failure_mid_stream_ends_with_an_error_event() {
    let server = TestServer::start().await;
    let response = server.messages(&long_stream_body()).await;
    let mut bytes = response.bytes_stream();
    let mut seen = read_deltas(&mut bytes, 2).await;
    shut_down_engine(&server.engine).await;
    read_to_end(&mut bytes, &mut seen).await;
    let events = sse_events(&seen);
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "error", "{seen}");
    assert_eq!(last["type"], "error");
    assert_eq!(last["error"]["type"], "api_error", "{last}");
    assert!(last["error"]["message"]
        .as_str()
        .unwrap()
        .contains("shut down"));
    assert!(!events.iter().any(|(n, _)| n == "message_stop"));

    // New work is refused while the engine is down: 503 overloaded_error.
    let r = server.messages(&greedy_body(4)).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_anthropic_error(r, 503, "overloaded_error", &["shutting down"]).await;
    server.shutdown().await;
}
