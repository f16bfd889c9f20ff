//! `/v1/responses` over real HTTP against the real model: the stream's
//! event order and its terminal event, the whole and streamed forms storing
//! the same object, a chain running as its first turn's agent, and every
//! client mistake a 4xx naming its field (the SDK tests in tests/python
//! cover the clients' view, restarts and other keys).

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::sse::sse_events;
use support::*;

use serde_json::{json, Value};

fn turn(input: Value, extra: Value) -> Value {
    let mut body = json!({
        "model": "default",
        "instructions": "You are a helpful assistant.",
        "input": input,
        "temperature": 0,
        "max_output_tokens": 8,
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

async fn create(server: &TestServer, body: &Value) -> Value {
    let r = server.post_json("/v1/responses", body, None).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_streamed_response_is_stored_as_its_terminal_event_says() {
    let server = TestServer::start().await;
    let body = turn(json!("Say hello."), json!({"stream": true}));
    let text = server
        .post_json("/v1/responses", &body, None)
        .await
        .text()
        .await
        .unwrap();
    let events = sse_events(&text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    let tail = &names[names.len() - 4..];
    assert_eq!(
        tail[..3],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done"
        ]
    );
    assert!(
        ["response.completed", "response.incomplete"].contains(&tail[3]),
        "{names:?}"
    );
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i, "{name}");
    }
    let last = &events.last().unwrap().1["response"];
    let deltas: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(last["output"][0]["content"][0]["text"], deltas.as_str());
    let id = last["id"].as_str().unwrap();
    let stored: Value = server
        .get(&format!("/v1/responses/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        &stored, last,
        "the stored object is the one the stream ended with"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_chain_is_its_first_turns_agent_and_prefills_only_the_new_input() {
    let server = TestServer::start().await;
    let first = create(&server, &turn(json!("Name a city."), json!({}))).await;
    let id = first["id"].as_str().unwrap();
    let second = create(
        &server,
        &turn(json!("And a river?"), json!({"previous_response_id": id})),
    )
    .await;
    let total = first["usage"]["total_tokens"].as_u64().unwrap();
    let cached = second["usage"]["input_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(cached >= total - 1, "{cached} of {total}: {second}");
    assert_eq!(second["usage"]["cache_source"], "hot");
    assert_eq!(second["previous_response_id"], id);
    // The agent is named after the chain's first response.
    let agent: Value = server
        .get(&format!("/v1/agents/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(agent["id"], id, "{agent}");
    // Store false: answered, not kept.
    let unstored = create(&server, &turn(json!("Hi."), json!({"store": false}))).await;
    let r = server
        .get(&format!(
            "/v1/responses/{}",
            unstored["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r.status(), 404);
    server.shutdown().await;
}

#[tokio::test]
async fn client_mistakes_are_400s_and_404s_naming_what_was_wrong() {
    let server = TestServer::start().await;
    let cases = [
        (json!({"model": "default"}), "input"),
        (turn(json!(7), json!({})), "input"),
        (
            turn(
                json!([{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]),
                json!({}),
            ),
            "input[0].content[0].type",
        ),
        (
            turn(
                json!([{"type": "function_call_output", "output": "x"}]),
                json!({}),
            ),
            "input[0].call_id",
        ),
        (
            turn(json!("x"), json!({"tools": [{"type": "function"}]})),
            "tools[0].name",
        ),
        (
            turn(
                json!("x"),
                json!({"tools": [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "nonsense"}}}}], "tool_choice": "required"}),
            ),
            "tools[0].parameters",
        ),
        (
            turn(json!("x"), json!({"text": {"format": {"type": "xml"}}})),
            "text.format.type",
        ),
        (
            turn(json!("x"), json!({"tool_choice": "sometimes"})),
            "tool_choice",
        ),
        (turn(json!("x"), json!({"temperature": 5})), "temperature"),
        (
            turn(json!("x"), json!({"max_output_tokens": 0})),
            "max_output_tokens",
        ),
        (
            turn(json!("x"), json!({"model": "gpt-nonexistent"})),
            "model",
        ),
        (
            turn(json!("x"), json!({"previous_response_id": "resp_missing"})),
            "previous_response_id",
        ),
        (
            turn(
                json!("x"),
                json!({"previous_response_id": "x".repeat(5000)}),
            ),
            "previous_response_id",
        ),
    ];
    for (body, param) in cases {
        let r = server.post_json("/v1/responses", &body, None).await;
        let status = r.status().as_u16();
        let got: Value = r.json().await.unwrap();
        assert_eq!(status, 400, "{body}: {got}");
        assert_eq!(got["error"]["param"], param, "{body}: {got}");
    }
    let r = server
        .post_json(
            "/v1/responses",
            &turn(json!("x"), json!({"previous_response_id": "resp_missing"})),
            None,
        )
        .await;
    assert_envelope(
        r,
        400,
        "invalid_request_error",
        Some("previous_response_not_found"),
    )
    .await;
    for path in [
        "/v1/responses/resp_missing",
        "/v1/responses/resp_missing/input_items",
    ] {
        assert_envelope(server.get(path).await, 404, "invalid_request_error", None).await;
    }
    assert_envelope(
        server.delete("/v1/responses/resp_missing").await,
        404,
        "invalid_request_error",
        None,
    )
    .await;
    let first = create(&server, &turn(json!("Hi."), json!({}))).await;
    let page = format!(
        "/v1/responses/{}/input_items?limit=0",
        first["id"].as_str().unwrap()
    );
    let r = server.get(&page).await;
    assert_eq!(r.status(), 400);
    server.shutdown().await;
}
