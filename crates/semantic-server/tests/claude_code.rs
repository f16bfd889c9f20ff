//! What Claude Code sends and needs, over the real server and model: the
//! request bodies it sent (recorded from Claude Code 2.1.328 against this
//! server with `scripts/record-client-requests.py`, personal paths and ids
//! replaced) are accepted on its `?beta=true` routes and stream in the
//! shape it parses; its per-request billing header does not break prefix
//! reuse; a stream waiting behind another stays alive with `ping` events.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::anthropic::{total_input, usage_count};
use support::prompts::long_stream_body;
use support::sse::{read_to_end, read_until, sse_events};
use support::*;

use std::time::Duration;

use semantic_domain::MaxTokensPolicy;
use semantic_server::ServerConfig;
use serde_json::{json, Value};

/// `metadata.user_id` as Claude Code 2.1.328 sends it: a JSON object in a
/// string, naming the device and the session (the session is the agent).
fn claude_code_user_id(session: &str) -> String {
    json!({"device_id": "0".repeat(64), "account_uuid": "", "session_id": session}).to_string()
}

/// A first request of a Claude Code session, its billing block carrying `nonce`.
fn session_request(nonce: &str) -> Value {
    let billing = format!(
        "x-anthropic-billing-header: cc_version=2.1.328.a1b; cc_entrypoint=sdk-cli; cch={nonce};"
    );
    json!({
        "model": "default",
        "system": [
            {"type": "text", "text": billing},
            {"type": "text", "text": "You are a coding agent. Answer in one word.",
             "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say ready."}]}],
        "metadata": {"user_id": claude_code_user_id("5f0c5b6e-8d1a-4c51-9a57-2f6f1f0d2b11")},
        "temperature": 0,
        "max_tokens": 4,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_billing_nonce_reuses_the_whole_prompt_but_its_last_token() {
    let server = TestServer::start().await;
    let first = server.message_ok(&session_request("1a2b3"), None).await;
    let prompt = total_input(&first["usage"]);
    assert_eq!(
        usage_count(&first["usage"], "cache_creation_input_tokens"),
        prompt,
        "the session is an agent, so its cold prompt is kept: {first}"
    );

    let second = server.message_ok(&session_request("9f8e7"), None).await;
    let usage = &second["usage"];
    assert_eq!(total_input(usage), prompt, "{usage}");
    // The last prompt token is always recomputed: its logits start the reply.
    assert_eq!(
        usage_count(usage, "cache_read_input_tokens"),
        prompt - 1,
        "{usage}"
    );
    assert_eq!(usage["cache_source"], "hot", "{usage}");

    // The rule is "the billing block is not part of the prompt", so the
    // prompt is the same as without it.
    let mut without = session_request("0");
    without["system"].as_array_mut().unwrap().remove(0);
    assert_eq!(server.count_tokens(&without).await, prompt);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_waiting_in_the_queue_gets_pings_until_its_turn() {
    let config = ServerConfig {
        stream_ping_interval: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let server = TestServer::start_custom(one_slot_config(), config, None).await;
    // The only sequence is busy for the whole test (thousands of tokens).
    let mut running = server.messages(&long_stream_body()).await.bytes_stream();
    read_until(&mut running, "event: content_block_delta", 2).await;

    let mut queued = session_request("1");
    queued["stream"] = json!(true);
    let mut waiting = server.messages(&queued).await.bytes_stream();
    // `message_start` and the opening `ping` come at once; 3 more prove
    // the idle pings, and no text yet proves the request is still queued.
    let mut seen = read_until(&mut waiting, "event: ping", 4).await;
    assert!(!seen.contains("content_block_delta"), "{seen}");

    drop(running);
    read_to_end(&mut waiting, &mut seen).await;
    let events = sse_events(&seen);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
    assert!(names.contains(&"content_block_delta"), "{names:?}");
    let (_, delta) = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert!(usage_count(&delta["usage"], "output_tokens") > 0, "{delta}");
    server.shutdown().await;
}

/// Claude Code's own model names (`claude-sonnet-4-5` here) served by the
/// catch-all alias, as docs/clients.md sets it up.
fn claude_code_server() -> ServerConfig {
    with_model_aliases(&["*=default"])
}

/// A recorded request: `{"method", "path", "headers", "body"}`.
fn recorded(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/claude-code-2.1.328/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Send `body` to `path` with the headers Claude Code sent with it.
async fn replay(server: &TestServer, entry: &Value, path: &str, body: &Value) -> reqwest::Response {
    let mut request = server.client.post(server.url(path)).json(body);
    for (name, value) in entry["headers"].as_object().unwrap() {
        if name != "content-type" {
            request = request.header(name, value.as_str().unwrap());
        }
    }
    request.send().await.unwrap()
}

/// `count_tokens?beta=true` of a recorded body, as Claude Code calls it.
async fn count_recorded(server: &TestServer, entry: &Value, body: &Value) -> u64 {
    let mut body = body.clone();
    for field in ["max_tokens", "stream", "metadata", "context_management"] {
        body.as_object_mut().unwrap().remove(field);
    }
    let r = replay(server, entry, "/v1/messages/count_tokens?beta=true", &body).await;
    let status = r.status();
    let answer: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    answer["input_tokens"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_claude_code_prompts_are_counted_whole_on_the_beta_route() {
    let server = TestServer::start_custom(engine_config(), claude_code_server(), None).await;
    let first = recorded("first-turn");
    assert_eq!(first["path"], "/v1/messages?beta=true");
    let whole = count_recorded(&server, &first, &first["body"]).await;
    // Its system prompt and 12 tools: more than SmolLM2's 8K window holds.
    assert!(whole > 8192, "{whole}");

    let continued = recorded("continued-turn");
    let longer = count_recorded(&server, &continued, &continued["body"]).await;
    assert!(longer > whole, "{longer} <= {whole}");

    // The recorded billing block is not part of the prompt.
    let mut without = first["body"].clone();
    let system = without["system"].as_array_mut().unwrap();
    let billing = system.remove(0);
    assert!(billing["text"]
        .as_str()
        .unwrap()
        .starts_with("x-anthropic-billing-header:"));
    assert_eq!(count_recorded(&server, &first, &without).await, whole);
    server.shutdown().await;
}

/// A recorded body cut to fit SmolLM2's 8K window, every part kept: each
/// text block and tool description cut to `keep` characters, the tools'
/// schemas whole.
fn fitted(body: &Value, keep: usize) -> Value {
    let cut = |v: &mut Value| {
        let text: String = v.as_str().unwrap().chars().take(keep).collect();
        *v = Value::String(text);
    };
    let mut body = body.clone();
    for block in body["system"].as_array_mut().unwrap() {
        cut(&mut block["text"]);
    }
    for message in body["messages"].as_array_mut().unwrap() {
        for block in message["content"].as_array_mut().unwrap() {
            cut(&mut block["text"]);
        }
    }
    for tool in body["tools"].as_array_mut().unwrap() {
        cut(&mut tool["description"]);
    }
    body
}

/// The recorded turns, fitted: each streams Anthropic's events with the
/// usage fields Claude Code reads, and the second, an extension of the
/// first in the same session, reads the first's prompt from the agent's KV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_turns_stream_as_claude_code_parses_and_the_second_reuses_the_first() {
    let mut config = engine_config();
    // Claude Code asks for 32,000 tokens; the cap keeps the test short.
    config.max_tokens = MaxTokensPolicy {
        default: 8,
        cap: Some(8),
        strict: false,
    };
    let server = TestServer::start_custom(config, claude_code_server(), None).await;
    let (first, continued) = (recorded("first-turn"), recorded("continued-turn"));
    let first_body = fitted(&first["body"], 150);
    let first_prompt = count_recorded(&server, &first, &first_body).await;

    let events = streamed(&server, &first, &first_body).await;
    let usage = final_usage(&events);
    assert_eq!(
        usage_count(&usage, "cache_creation_input_tokens"),
        first_prompt,
        "{usage}"
    );

    let events = streamed(&server, &continued, &fitted(&continued["body"], 150)).await;
    let usage = final_usage(&events);
    assert!(
        usage_count(&usage, "cache_read_input_tokens") >= first_prompt - 1,
        "the first turn's prompt was not reused: {usage}"
    );
    assert_eq!(usage["cache_source"], "hot", "{usage}");
    server.shutdown().await;
}

/// A recorded body sent as is (streamed, as Claude Code does): its events.
async fn streamed(server: &TestServer, entry: &Value, body: &Value) -> Vec<(String, Value)> {
    assert_eq!(body["stream"], true);
    let r = replay(server, entry, "/v1/messages?beta=true", body).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    let events = sse_events(&text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
    let keys = [
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    ];
    for key in keys {
        usage_count(&events[0].1["message"]["usage"], key);
    }
    // Every tool_use block's streamed input is valid JSON of the right shape.
    let mut input = String::new();
    for (name, data) in &events {
        match (name.as_str(), data["delta"]["type"].as_str()) {
            ("content_block_delta", Some("input_json_delta")) => {
                input.push_str(data["delta"]["partial_json"].as_str().unwrap());
            }
            ("content_block_stop", _) if !input.is_empty() => {
                let parsed: Value = serde_json::from_str(&std::mem::take(&mut input)).unwrap();
                assert!(parsed.is_object(), "{parsed}");
            }
            _ => {}
        }
    }
    events
}

/// `message_delta`'s usage: all four counts, the final ones.
fn final_usage(events: &[(String, Value)]) -> Value {
    let (_, delta) = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    let usage = delta["usage"].clone();
    assert!(usage_count(&usage, "output_tokens") > 0, "{usage}");
    let reason = delta["delta"]["stop_reason"].as_str().unwrap();
    assert!(
        ["end_turn", "max_tokens", "tool_use"].contains(&reason),
        "{delta}"
    );
    usage
}
