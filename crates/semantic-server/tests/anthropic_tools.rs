//! Tool use on the Anthropic Messages API over real HTTP on the real model.
//! SmolLM2-135M is too small to choose tools well, so these tests assert
//! structure: forced calls come back as `tool_use` blocks whose `input`
//! satisfies the schema, streams reassemble to the same input, a
//! `tool_result` turn completes, and bad tool requests are 400s in
//! Anthropic's envelope naming the field.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::anthropic::{assert_anthropic_error, total_input};
use support::sse::sse_events;
use support::tool_fixtures::{self, assert_valid_input, Family};
use support::*;

use serde_json::{json, Value};

fn weather_tool() -> Value {
    tool_fixtures::weather().in_shape(Family::Anthropic)
}

fn ask_weather(tool_choice: Value) -> Value {
    tool_fixtures::ask_weather(Family::Anthropic, tool_choice)
}

/// The single `tool_use` block of a forced reply, checked for shape.
fn only_tool_use(body: &Value) -> &Value {
    assert_eq!(body["stop_reason"], "tool_use", "{body}");
    assert!(body["stop_sequence"].is_null(), "{body}");
    let content = body["content"].as_array().expect("content");
    assert_eq!(content.len(), 1, "a forced call has no text: {body}");
    let block = &content[0];
    assert_eq!(block["type"], "tool_use", "{body}");
    let id = block["id"].as_str().expect("id");
    assert!(id.starts_with("toolu_") && id.len() > 6, "{id}");
    assert!(block["input"].is_object(), "{block}");
    block
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_and_named_choices_return_schema_valid_tool_use_blocks() {
    let server = TestServer::start().await;
    let body = server
        .message_ok(&ask_weather(json!({"type": "any"})), None)
        .await;
    let block = only_tool_use(&body);
    assert_valid_input(block["name"].as_str().unwrap(), &block["input"]);
    assert!(body["usage"]["output_tokens"].as_u64().unwrap() > 0);

    for name in ["get_weather", "get_time"] {
        let named = json!({"type": "tool", "name": name});
        let body = server.message_ok(&ask_weather(named), None).await;
        let block = only_tool_use(&body);
        assert_eq!(block["name"], name, "{body}");
        assert_valid_input(name, &block["input"]);
    }

    // `none` keeps the tools in the prompt but parses nothing: plain text.
    let body = server
        .message_ok(&ask_weather(json!({"type": "none"})), None)
        .await;
    assert_ne!(body["stop_reason"], "tool_use", "{body}");
    assert_eq!(body["content"][0]["type"], "text", "{body}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_tool_use_reassembles_to_the_non_streaming_input() {
    let server = TestServer::start().await;
    let body = ask_weather(json!({"type": "tool", "name": "get_weather"}));
    let whole = server.message_ok(&body, None).await;
    let expected = only_tool_use(&whole).clone();

    let mut streaming = body.clone();
    streaming["stream"] = json!(true);
    let response = server.messages(&streaming).await;
    assert_eq!(response.status(), 200);
    let events = sse_events(&response.text().await.unwrap());
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str(), "{data}");
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let pieces = names.len() - 6;
    let mut order = vec!["message_start", "ping", "content_block_start"];
    order.extend(std::iter::repeat_n("content_block_delta", pieces));
    order.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, order, "no text block beside a forced call");
    assert!(pieces >= 1);

    let start = &events[2].1;
    assert_eq!(start["index"], 0);
    let block = &start["content_block"];
    assert_eq!(block["type"], "tool_use", "{start}");
    assert_eq!(block["name"], "get_weather");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(block["input"], json!({}));
    let json: String = events[3..3 + pieces]
        .iter()
        .map(|(_, d)| {
            assert_eq!(d["index"], 0);
            assert_eq!(d["delta"]["type"], "input_json_delta", "{d}");
            d["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    let input: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json:?}: {e}"));
    assert_eq!(input, expected["input"]);
    assert_eq!(events[3 + pieces].1["index"], 0);
    let delta = &events[4 + pieces].1;
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "tool_use", "stop_sequence": null})
    );
    assert_eq!(
        delta["usage"]["output_tokens"],
        whole["usage"]["output_tokens"]
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_result_turn_completes_and_reuses_the_agents_cache() {
    let server = TestServer::start().await;
    let agent = Some("anthropic-tools-agent");
    let first = ask_weather(json!({"type": "tool", "name": "get_weather"}));
    let turn1 = server.message_ok(&first, agent).await;
    let call = only_tool_use(&turn1).clone();

    let mut second = first.clone();
    let messages = second["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": turn1["content"]}));
    messages.push(json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": call["id"], "content": "{\"temp\": 21, \"sky\": \"clear\"}"},
    ]}));
    second["tool_choice"] = json!({"type": "none"});
    let turn2 = server.message_ok(&second, agent).await;
    let reason = turn2["stop_reason"].as_str().unwrap();
    assert!(["end_turn", "max_tokens"].contains(&reason), "{turn2}");
    assert_eq!(turn2["content"].as_array().unwrap().len(), 1, "{turn2}");
    assert_eq!(turn2["content"][0]["type"], "text", "{turn2}");
    // Same tools, same rendering: the first turn's prompt is reused.
    let usage1 = &turn1["usage"];
    let first_prompt = usage1["cache_creation_input_tokens"].as_u64().unwrap()
        + usage1["cache_read_input_tokens"].as_u64().unwrap();
    let read = turn2["usage"]["cache_read_input_tokens"].as_u64().unwrap();
    assert!(
        read >= first_prompt - 1,
        "read {read} of a {first_prompt}-token prefix"
    );

    // Under `auto` the reply is text or calls, either well formed.
    second["tool_choice"] = json!({"type": "auto"});
    let auto = server.message_ok(&second, agent).await;
    for block in auto["content"].as_array().unwrap() {
        match block["type"].as_str().unwrap() {
            "text" => assert!(block["text"].is_string()),
            "tool_use" => assert!(block["input"].is_object(), "{auto}"),
            other => panic!("unexpected block {other}: {auto}"),
        }
    }
    server.shutdown().await;
}

/// count_tokens counts the tools the model is shown, as a real call does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_tokens_includes_the_tools() {
    let server = TestServer::start().await;
    let body = ask_weather(json!({"type": "any"}));
    let real = server.message_ok(&body, None).await;
    let input = total_input(&real["usage"]);
    assert_eq!(server.count_tokens(&body).await, input);
    let mut bare = body;
    bare.as_object_mut().unwrap().remove("tools");
    bare.as_object_mut().unwrap().remove("tool_choice");
    assert!(
        server.count_tokens(&bare).await < input,
        "the tool section is in the prompt"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tools_and_tool_choices_are_400_in_anthropics_envelope() {
    let server = TestServer::start().await;
    let unresolvable = json!({"name": "f", "input_schema": {"type": "object",
        "properties": {"a": {"$ref": "#/nowhere"}}}});
    let cases: Vec<(Value, Value, Vec<&str>)> = vec![
        (
            json!([weather_tool(), {"name": "bad name", "input_schema": {}}]),
            json!({"type": "auto"}),
            vec!["tools[1].name", "bad name"],
        ),
        (
            json!([weather_tool(), weather_tool()]),
            json!({"type": "auto"}),
            vec!["tools[1].name", "more than one"],
        ),
        (
            json!([weather_tool(), {"name": "f"}]),
            json!({"type": "auto"}),
            vec!["tools[1].input_schema", "field required"],
        ),
        (
            json!([{"name": "f", "input_schema": {"type": "array"}}]),
            json!({"type": "auto"}),
            vec!["tools[0].input_schema", "object"],
        ),
        (
            json!([unresolvable.clone()]),
            json!({"type": "any"}),
            vec!["tools[0].input_schema", "grammar"],
        ),
        (
            json!([{"type": "bash_20250124", "name": "bash"}]),
            json!({"type": "auto"}),
            vec!["tools[0].type", "bash_20250124"],
        ),
        (
            json!([weather_tool()]),
            json!({"type": "tool", "name": "launch"}),
            vec!["tool_choice.name", "launch"],
        ),
        (
            json!([weather_tool()]),
            json!({"type": "tool"}),
            vec!["tool_choice.name", "field required"],
        ),
        (
            json!([]),
            json!({"type": "any"}),
            vec!["tool_choice.type", "at least one tool"],
        ),
        (
            json!([weather_tool()]),
            json!({"type": "sometimes"}),
            vec!["tool_choice", "sometimes"],
        ),
    ];
    for (tools, choice, parts) in cases {
        let mut body = ask_weather(choice);
        body["tools"] = tools;
        body["max_tokens"] = json!(4);
        let response = server.messages(&body).await;
        assert_anthropic_error(response, 400, "invalid_request_error", &parts).await;
    }
    // Only a forced call needs the grammar: under `auto` (Claude Code's
    // default) the same schema is offered through the prompt and succeeds.
    let mut body = ask_weather(json!({"type": "auto"}));
    body["tools"] = json!([weather_tool(), unresolvable]);
    body["max_tokens"] = json!(4);
    assert_eq!(server.messages(&body).await.status(), 200);
    server.shutdown().await;
}
