//! Real model, real HTTP: each test starts the engine on SmolLM2-135M,
//! serves it on 127.0.0.1 with a port chosen at run time, and talks to it
//! with reqwest as a client would.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::engine_checks::{sampled_tokens, shut_down_engine, wait_until_idle};
use support::prompts::{greedy_prompt_tokens, long_stream_body, QUESTION, SYSTEM};
use support::sse::{read_to_end, read_until, sse_data, ByteStream};
use support::*;

use std::time::Duration;

use semantic_engine::EngineHandle;
use serde_json::{json, Value};

fn greedy_body(model: &str, max_tokens: u32) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": QUESTION},
        ],
        "temperature": 0,
        "max_tokens": max_tokens,
    })
}

/// Usage must count the templated prompt exactly and add up.
fn assert_usage(engine: &EngineHandle, usage: &Value, max_tokens: u64) {
    let expected_prompt = greedy_prompt_tokens(engine);
    let prompt = usage["prompt_tokens"].as_u64().unwrap();
    let completion = usage["completion_tokens"].as_u64().unwrap();
    assert_eq!(prompt, expected_prompt, "{usage}");
    assert!((1..=max_tokens).contains(&completion), "{usage}");
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), prompt + completion);
    let cached = usage["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(cached <= prompt, "{usage}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_greedy_answer_names_paris_with_consistent_usage() {
    let server = TestServer::start().await;
    let response = server.chat(&greedy_body("default", 32)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["id"].as_str().unwrap().starts_with("chatcmpl-"),
        "{body}"
    );
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(body["model"], server.engine.model().info().id.as_str());
    assert!(body["system_fingerprint"].is_string());
    let choice = &body["choices"][0];
    assert_eq!(body["choices"].as_array().unwrap().len(), 1);
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(choice["logprobs"].is_null());
    let content = choice["message"]["content"].as_str().unwrap();
    assert!(content.contains("Paris"), "answer was {content:?}");
    assert!(["stop", "length"].contains(&choice["finish_reason"].as_str().unwrap()));

    assert_usage(&server.engine, &body["usage"], 32);
    server.shutdown().await;
}

/// A streamed completion split into its parts; asserts the framing.
struct Streamed {
    role: Value,
    contents: Vec<Value>,
    finish: Value,
    usage: Option<Value>,
}

/// POST a streaming request and check `[DONE]`, ids and object names.
async fn stream_chat(server: &TestServer, body: &Value, include_usage: bool) -> Streamed {
    let response = server.chat(body).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let events = sse_data(&response.text().await.unwrap());
    let (done, events) = events.split_last().unwrap();
    assert_eq!(done, "[DONE]");
    let mut chunks: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let id = chunks[0]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("chatcmpl-"));
    for chunk in &chunks {
        assert_eq!(chunk["id"], id.as_str());
        assert_eq!(chunk["object"], "chat.completion.chunk");
        // With include_usage every chunk carries `usage` (null but the last).
        assert_eq!(chunk.get("usage").is_some(), include_usage, "{chunk}");
    }
    let usage = include_usage.then(|| chunks.pop().unwrap());
    let finish = chunks.pop().unwrap();
    let role = chunks.remove(0);
    Streamed {
        role,
        contents: chunks,
        finish,
        usage,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_matches_the_whole_answer_then_usage_and_done() {
    let server = TestServer::start().await;
    let whole: Value = server
        .chat(&greedy_body("default", 32))
        .await
        .json()
        .await
        .unwrap();
    let mut body = greedy_body("default", 32);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let streamed = stream_chat(&server, &body, true).await;

    let role_delta = &streamed.role["choices"][0]["delta"];
    assert_eq!(*role_delta, json!({"role": "assistant", "content": ""}));
    let text: String = streamed
        .contents
        .iter()
        .map(|c| {
            assert!(c["choices"][0]["finish_reason"].is_null(), "{c}");
            assert!(c["usage"].is_null(), "{c}");
            let piece = c["choices"][0]["delta"]["content"].as_str().unwrap();
            assert!(!piece.is_empty(), "empty content chunk");
            piece
        })
        .collect();
    let answer = &whole["choices"][0];
    assert_eq!(text, answer["message"]["content"].as_str().unwrap());
    assert_eq!(streamed.finish["choices"][0]["delta"], json!({}));
    assert_eq!(
        streamed.finish["choices"][0]["finish_reason"],
        answer["finish_reason"]
    );
    let usage = streamed.usage.unwrap();
    assert_eq!(usage["choices"], json!([]));
    for key in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert_eq!(usage["usage"][key], whole["usage"][key], "{key}");
    }

    // Without include_usage: no usage anywhere, the finish chunk, then [DONE].
    body["stream_options"] = json!(null);
    let plain = stream_chat(&server, &body, false).await;
    assert_eq!(
        plain.finish["choices"][0]["finish_reason"],
        answer["finish_reason"]
    );
    assert_eq!(plain.contents.len(), streamed.contents.len());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_and_real_model_names_work_and_unknown_is_rejected() {
    let server = TestServer::start().await;
    let id = server.engine.model().info().id.clone();
    for name in ["default", id.as_str()] {
        let response = server.chat(&greedy_body(name, 4)).await;
        assert_eq!(response.status(), 200, "model {name:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["model"], id.as_str());
    }
    // Fields we do not know are ignored, as clients send many.
    let mut extra = greedy_body("default", 4);
    extra["frequency_penalty"] = json!(0);
    extra["logit_bias"] = json!({});
    extra["metadata"] = json!({"k": "v"});
    extra["user"] = json!("someone");
    assert_eq!(server.chat(&extra).await.status(), 200);

    let response = server.chat(&greedy_body("gpt-4o", 4)).await;
    let body = assert_error(
        response,
        400,
        "invalid_request_error",
        "gpt-4o",
        Some("model"),
    )
    .await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("unknown model") && message.contains(&id),
        "{message}"
    );
    server.shutdown().await;
}

const INVALID: &str = "invalid_request_error";
const CHAT: &str = "/v1/chat/completions";

/// The greedy body with the fields of `patch` replaced.
fn patched(patch: &Value) -> Value {
    let mut body = greedy_body("default", 8);
    for (k, v) in patch.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// Bodies with one bad field: the patch, a message fragment, the `param`.
fn bad_field_cases() -> Vec<(Value, &'static str, &'static str)> {
    let image = json!([{"type": "image_url", "image_url": {"url": "x"}}]);
    vec![
        (json!({"temperature": "hot"}), "invalid type", "temperature"),
        (
            json!({"temperature": 5}),
            "temperature must be between 0 and 2",
            "temperature",
        ),
        (
            json!({"max_tokens": 0}),
            "max_tokens must be at least 1",
            "max_tokens",
        ),
        (json!({"messages": []}), "at least one message", "messages"),
        (json!({"n": 2}), "n must be 1", "n"),
        (
            json!({"messages": [{"role": "user", "content": image}]}),
            "not supported",
            "messages[0].content[0].type",
        ),
        (
            json!({"messages": [{"role": "wizard", "content": "hi"}]}),
            "unknown variant",
            "messages[0].role",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_and_bad_fields_are_400_envelopes_naming_the_field() {
    let server = TestServer::start().await;
    let json = "application/json";
    let r = server
        .post_raw(CHAT, json, r#"{"model": "default", "messages": [}"#.into())
        .await;
    assert_error(r, 400, INVALID, "not valid JSON", None).await;
    let r = server
        .post_raw(CHAT, json, r#"{"model": "default"}"#.into())
        .await;
    assert_error(
        r,
        400,
        INVALID,
        "missing field `messages`",
        Some("messages"),
    )
    .await;

    for (patch, message, param) in bad_field_cases() {
        let r = server.chat(&patched(&patch)).await;
        let body = assert_error(r, 400, INVALID, message, Some(param)).await;
        assert!(body["error"].get("code").is_some(), "{patch}: {body}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlong_prompt_and_wrong_media_type_are_rejected() {
    let server = TestServer::start().await;
    let long = "word ".repeat(10_000);
    let r = server
        .chat(&patched(
            &json!({"messages": [{"role": "user", "content": long}]}),
        ))
        .await;
    let body = assert_error(r, 400, INVALID, "context window", Some("messages")).await;
    assert_eq!(body["error"]["code"], "context_length_exceeded");

    let body = greedy_body("default", 4).to_string();
    let r = server.post_raw(CHAT, "text/plain", body).await;
    assert_error(r, 415, INVALID, "application/json", None).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_413_in_the_envelope() {
    let server = TestServer::start().await;
    let huge = "x".repeat(5 * 1024 * 1024);
    let body = json!({"model": "default", "messages": [{"role": "user", "content": huge}]});
    let r = server.chat(&body).await;
    assert_error(r, 413, "invalid_request_error", "exceeds", None).await;

    // Chunked, so no Content-Length to refuse up front: the limit is met while reading.
    let json = body.to_string().into_bytes();
    let chunks: Vec<Vec<u8>> = json.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
    let stream = futures::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    let r = server
        .client
        .post(server.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_error(r, 413, "invalid_request_error", "exceeds", None).await;
    // The server is still fine afterwards.
    assert_eq!(server.chat(&greedy_body("default", 2)).await.status(), 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_wrong_methods_are_json_errors() {
    let server = TestServer::start().await;
    let r = server
        .client
        .get(server.url("/v1/nope"))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 404, INVALID, "/v1/nope", None).await;
    assert_eq!(body["error"]["code"], "unknown_url");
    let r = server
        .client
        .get(server.url("/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["allow"].to_str().unwrap().contains("POST"));
    assert_error(r, 405, INVALID, "GET", None).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_list_and_liveness() {
    let server = TestServer::start().await;
    let body: Value = server
        .client
        .get(server.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "list");
    let card = &body["data"][0];
    assert_eq!(card["id"], server.engine.model().info().id.as_str());
    assert_eq!(card["object"], "model");
    assert_eq!(card["owned_by"], "semantic");
    assert!(card["created"].as_u64().unwrap() > 0);
    assert_eq!(card["context_length"], server.engine.context_window());
    assert_eq!(card["kv_type"], "f16");
    // What this build places the model on: on a CPU build (CI's), nothing
    // offloaded and the CPU backend.
    let placed = semantic_engine::offload::Offload::detect(Default::default()).unwrap();
    assert_eq!(card["gpu_layers"], placed.gpu_layers);
    assert_eq!(card["compute_backend"], placed.backend.as_str());

    let id = server.engine.model().info().id.clone();
    let one = server.client.get(server.url(&format!("/v1/models/{id}")));
    let one: Value = one.send().await.unwrap().json().await.unwrap();
    assert_eq!(one, *card);
    let r = server
        .client
        .get(server.url("/v1/models/gpt-4o"))
        .send()
        .await;
    assert_error(r.unwrap(), 404, INVALID, "unknown model", Some("model")).await;

    let live = server
        .client
        .get(server.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(live.json::<Value>().await.unwrap()["status"], "ok");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_stream_frees_its_sequence() {
    let server = TestServer::start().await;
    let body = long_stream_body();
    let max_tokens = body["max_tokens"].as_u64().unwrap();
    let response = server.chat(&body).await;
    assert_eq!(response.status(), 200);
    let mut bytes = response.bytes_stream();
    let seen = read_content_chunks(&mut bytes, 4).await;
    assert!(
        !seen.contains("finish_reason\":\""),
        "finished too early: {seen}"
    );
    drop(bytes);

    wait_until_idle(&server.engine, Duration::from_secs(10)).await;
    let sampled = sampled_tokens(&server.engine);
    assert!(
        sampled < max_tokens / 2,
        "ran on after disconnect: {sampled} tokens"
    );

    let again = server.chat(&greedy_body("default", 4)).await;
    assert_eq!(again.status(), 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_streaming_client_that_gives_up_is_cancelled() {
    let server = TestServer::start().await;
    let mut body = long_stream_body();
    body["stream"] = json!(false);
    let gave_up = server
        .client
        .post(server.url("/v1/chat/completions"))
        .json(&body)
        .timeout(Duration::from_millis(1000))
        .send()
        .await;
    assert!(gave_up.unwrap_err().is_timeout());
    wait_until_idle(&server.engine, Duration::from_secs(10)).await;
    let sampled = sampled_tokens(&server.engine);
    assert!(
        sampled < 1000,
        "ran on after the client left: {sampled} tokens"
    );
    server.shutdown().await;
}

/// Read SSE bytes until at least `n` content deltas have arrived.
async fn read_content_chunks(bytes: &mut impl ByteStream, n: usize) -> String {
    read_until(bytes, "\"content\"", n).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_429_with_retry_after() {
    let server = TestServer::start_with(one_slot_config()).await;
    let running = server.chat(&long_stream_body()).await;
    let mut running = running.bytes_stream();
    read_content_chunks(&mut running, 2).await;
    let waiting = server.chat(&long_stream_body()).await;
    assert_eq!(waiting.status(), 200);
    let snap = server.engine.snapshot().await.unwrap();
    assert_eq!((snap.running, snap.waiting), (1, 1));

    let r = server.chat(&greedy_body("default", 4)).await;
    assert_eq!(r.headers()["retry-after"], "1");
    let body = assert_error(r, 429, "rate_limit_error", "queue is full", None).await;
    assert_eq!(body["error"]["code"], "queue_full");
    drop((running, waiting));
    wait_until_idle(&server.engine, Duration::from_secs(10)).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_shutdown_ends_streams_with_an_error_and_refuses_new_work() {
    let server = TestServer::start().await;
    let mut bytes = server.chat(&long_stream_body()).await.bytes_stream();
    let mut seen = read_content_chunks(&mut bytes, 2).await;
    shut_down_engine(&server.engine).await;
    read_to_end(&mut bytes, &mut seen).await;
    let events = sse_data(&seen);
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "server_error", "{last}");
    assert!(last["error"]["message"]
        .as_str()
        .unwrap()
        .contains("shut down"));
    assert!(!events.iter().any(|e| e == "[DONE]"));

    let r = server.chat(&greedy_body("default", 4)).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, 503, "server_error", "shutting down", None).await;
    server.shutdown().await;
}
