//! Tool calling and constrained output over real HTTP on the real model.
//! SmolLM2-135M is too small to choose tools well, so these tests assert
//! structure: forced calls parse and satisfy their schema, documents match
//! theirs, streams reassemble, and bad tool requests are 400s naming the field.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::sse::sse_data;
use support::tool_fixtures::{self, assert_valid_input, Family};
use support::*;

use serde_json::{json, Value};

fn weather_tool() -> Value {
    tool_fixtures::weather().in_shape(Family::OpenAi)
}

fn ask_weather(tool_choice: Value) -> Value {
    tool_fixtures::ask_weather(Family::OpenAi, tool_choice)
}

/// The single tool call of a non-streaming response, checked for shape.
fn only_call(body: &Value) -> &Value {
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{body}");
    assert!(choice["message"]["content"].is_null(), "{body}");
    let calls = choice["message"]["tool_calls"]
        .as_array()
        .expect("tool_calls");
    assert_eq!(calls.len(), 1, "{body}");
    let call = &calls[0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"), "{call}");
    assert_eq!(call["type"], "function");
    call
}

fn arguments(call: &Value) -> Value {
    let text = call["function"]["arguments"]
        .as_str()
        .expect("arguments string");
    serde_json::from_str(text).unwrap_or_else(|e| panic!("arguments {text:?}: {e}"))
}

async fn json_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_and_named_choices_return_schema_valid_calls() {
    let server = TestServer::start().await;
    let body = json_of(server.chat(&ask_weather(json!("required"))).await).await;
    let call = only_call(&body);
    let name = call["function"]["name"].as_str().unwrap();
    assert_valid_input(name, &arguments(call));

    let named = json!({"type": "function", "function": {"name": "get_weather"}});
    let body = json_of(server.chat(&ask_weather(named)).await).await;
    let call = only_call(&body);
    assert_eq!(call["function"]["name"], "get_weather");
    assert_valid_input("get_weather", &arguments(call));

    let named = json!({"type": "function", "function": {"name": "get_time"}});
    let body = json_of(server.chat(&ask_weather(named)).await).await;
    assert_eq!(only_call(&body)["function"]["name"], "get_time");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_result_follow_up_completes_and_reuses_the_agents_cache() {
    let server = TestServer::start().await;
    let named = json!({"type": "function", "function": {"name": "get_weather"}});
    let first = ask_weather(named);
    let post = |body: &Value| {
        server
            .client
            .post(server.url("/v1/chat/completions"))
            .header("X-Agent-ID", "weather-agent")
            .json(body)
            .send()
    };
    let turn1 = json_of(post(&first).await.unwrap()).await;
    let call = only_call(&turn1).clone();

    let mut second = first.clone();
    let messages = second["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call.clone()]}));
    messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "{\"temp\": 21, \"sky\": \"clear\"}"}));
    second["tool_choice"] = json!("none");
    let turn2 = json_of(post(&second).await.unwrap()).await;
    let choice = &turn2["choices"][0];
    assert!(
        ["stop", "length"].contains(&choice["finish_reason"].as_str().unwrap()),
        "{turn2}"
    );
    assert!(choice["message"]["content"].is_string(), "{turn2}");
    assert!(choice["message"].get("tool_calls").is_none(), "{turn2}");
    // Same tools, same rendering: the first turn's prompt is reused.
    let first_prompt = turn1["usage"]["prompt_tokens"].as_u64().unwrap();
    let cached = turn2["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(
        cached >= first_prompt - 1,
        "cached {cached} of a {first_prompt}-token prefix"
    );

    second["tool_choice"] = json!("auto");
    let turn2_auto = json_of(post(&second).await.unwrap()).await;
    let choice = &turn2_auto["choices"][0];
    let reason = choice["finish_reason"].as_str().unwrap();
    if reason == "tool_calls" {
        arguments(&choice["message"]["tool_calls"][0]);
    } else {
        assert!(choice["message"]["content"].is_string(), "{turn2_auto}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_format_json_schema_and_json_object_return_matching_json() {
    let server = TestServer::start().await;
    let schema = json!({
        "type": "object",
        "properties": {
            "answer": {"enum": ["yes", "no"]},
            "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
        },
        "required": ["answer", "confidence"],
        "additionalProperties": false,
    });
    let body = json!({
        "model": "default",
        "messages": [{"role": "user", "content": "Is Paris in France?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema, "strict": true}},
        "temperature": 0,
        "max_tokens": 64,
    });
    let reply = json_of(server.chat(&body).await).await;
    assert_eq!(reply["choices"][0]["finish_reason"], "stop", "{reply}");
    let text = reply["choices"][0]["message"]["content"].as_str().unwrap();
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert!(
        ["yes", "no"].contains(&doc["answer"].as_str().unwrap()),
        "{doc}"
    );
    let confidence = doc["confidence"].as_i64().unwrap();
    assert!((0..=100).contains(&confidence), "{doc}");

    let mut body = body;
    body["response_format"] = json!({"type": "json_object"});
    let reply = json_of(server.chat(&body).await).await;
    let text = reply["choices"][0]["message"]["content"].as_str().unwrap();
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert!(doc.is_object(), "{doc}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_tool_call_reassembles_to_the_non_streaming_call() {
    let server = TestServer::start().await;
    let body = ask_weather(json!("required"));
    let whole = json_of(server.chat(&body).await).await;
    let expected = only_call(&whole).clone();

    let mut streaming = body.clone();
    streaming["stream"] = json!(true);
    let response = server.chat(&streaming).await;
    assert_eq!(response.status(), 200);
    let events = sse_data(&response.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let mut id = None;
    let mut name = String::new();
    let mut args = String::new();
    let mut finish = None;
    let mut content = String::new();
    for event in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(event).unwrap();
        let choice = &chunk["choices"][0];
        content.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
        if let Some(calls) = choice["delta"]["tool_calls"].as_array() {
            for piece in calls {
                assert_eq!(piece["index"], 0, "{chunk}");
                if let Some(i) = piece["id"].as_str() {
                    assert!(id.is_none(), "id sent twice");
                    assert_eq!(piece["type"], "function");
                    id = Some(i.to_owned());
                }
                name.push_str(piece["function"]["name"].as_str().unwrap_or(""));
                args.push_str(piece["function"]["arguments"].as_str().unwrap_or(""));
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            finish = Some(reason.to_owned());
        }
    }
    assert!(id.unwrap().starts_with("call_"));
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    assert_eq!(content, "", "no text beside the call");
    assert_eq!(name, expected["function"]["name"].as_str().unwrap());
    let streamed_args: Value = serde_json::from_str(&args).unwrap();
    assert_eq!(streamed_args, arguments(&expected));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tools_choices_and_formats_are_400_naming_the_field() {
    let server = TestServer::start().await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"tools": [weather_tool(), {"type": "retrieval", "function": {"name": "x"}}]}),
            "retrieval",
            "tools[1].type",
        ),
        (
            json!({"tools": [weather_tool(), {"type": "function", "function": {"name": "bad name"}}]}),
            "bad name",
            "tools[1].function.name",
        ),
        (
            json!({"tools": [weather_tool(), weather_tool()]}),
            "more than one",
            "tools[1].function.name",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]}),
            "object",
            "tools[0].function.parameters",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}}}], "tool_choice": "required"}),
            "grammar",
            "tools[0].function.parameters",
        ),
        (
            json!({"tools": [weather_tool()], "tool_choice": {"type": "function", "function": {"name": "launch"}}}),
            "launch",
            "tool_choice",
        ),
        (
            json!({"tools": [weather_tool()], "tool_choice": "sometimes"}),
            "sometimes",
            "tool_choice",
        ),
        (
            json!({"tool_choice": "required"}),
            "at least one tool",
            "tool_choice",
        ),
        (
            json!({"response_format": {"type": "xml"}}),
            "xml",
            "response_format.type",
        ),
        (
            json!({"response_format": {"type": "json_schema"}}),
            "json_schema",
            "response_format.json_schema",
        ),
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}}}),
            "a b",
            "response_format.json_schema.name",
        ),
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#/missing"}}}}),
            "grammar",
            "response_format.json_schema.schema",
        ),
    ];
    for (extra, message, param) in cases {
        let mut body = json!({"model": "default", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        assert_error(
            server.chat(&body).await,
            400,
            "invalid_request_error",
            message,
            Some(param),
        )
        .await;
    }
    server.shutdown().await;
}
