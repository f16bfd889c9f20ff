//! `--stop` and `--default-temperature`, real model, real HTTP: what an
//! operator sets for a model applies to requests that leave it out, and a
//! reply ending at an operator's stop string ends its turn (the client
//! asked for no such string).

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::*;

use serde_json::{json, Value};

/// SmolLM2's greedy answer lists "1. 1\n2. 2\n..." (measured).
const COUNTING: &str = "Count from 1 to 20, separated by commas.";

fn first_line_config() -> semantic_engine::EngineConfig {
    let mut config = engine_config();
    config.turn_end = vec!["\n".into()];
    config.default_temperature = Some(0.0);
    config
}

/// No temperature: the server's default (greedy here) applies.
fn counting(family_path: &str) -> Value {
    let mut body = json!({
        "model": "default",
        "messages": [{"role": "user", "content": COUNTING}],
        "max_tokens": 40,
    });
    if family_path == "/v1/messages" {
        body["stop_sequences"] = json!(["never-generated"]);
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_stop_string_ends_the_turn_and_the_default_temperature_applies() {
    // The reference: the same greedy request on a server with no defaults.
    let plain = TestServer::start().await;
    let mut greedy = counting("/v1/messages");
    greedy["temperature"] = json!(0);
    let full = plain.message_ok(&greedy, None).await;
    let full_text = full["content"][0]["text"].as_str().unwrap().to_owned();
    plain.shutdown().await;
    let first_line = full_text.split('\n').next().unwrap();
    assert!(
        full_text.len() > first_line.len(),
        "{full_text:?} has one line"
    );

    let server = TestServer::start_with(first_line_config()).await;
    for _ in 0..2 {
        // Twice: without a temperature, the default (0) makes it repeatable.
        let reply = server.message_ok(&counting("/v1/messages"), None).await;
        assert_eq!(reply["stop_reason"], "end_turn", "{reply}");
        assert!(reply["stop_sequence"].is_null(), "{reply}");
        assert_eq!(reply["content"][0]["text"], first_line, "{reply}");
    }
    let r = server.chat(&counting("/v1/chat/completions")).await;
    assert_eq!(r.status(), 200);
    let chat: Value = r.json().await.unwrap();
    assert_eq!(chat["choices"][0]["finish_reason"], "stop", "{chat}");
    assert_eq!(chat["choices"][0]["message"]["content"], first_line);

    // A client's own stop string is still reported as such.
    let mut own = counting("/v1/messages");
    own["stop_sequences"] = json!(["\n"]);
    let reply = server.message_ok(&own, None).await;
    assert_eq!(reply["stop_reason"], "stop_sequence", "{reply}");
    assert_eq!(reply["stop_sequence"], "\n", "{reply}");
    server.shutdown().await;
}
