//! `--model-alias`: clients that send their own model names (Claude Code's
//! `claude-sonnet-…`, OpenAI tools' `gpt-…`) reach the served model on every
//! API family, real model, real HTTP; a name no alias maps stays an error
//! naming what is served.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::anthropic::assert_anthropic_error;
use support::*;

use serde_json::{json, Value};

fn anthropic_body(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say hello."}],
        "temperature": 0,
        "max_tokens": 2,
    })
}

fn openai_body(model: &str) -> Value {
    let mut body = short_chat(2);
    body["model"] = json!(model);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_aliases_serve_both_families_and_unmapped_names_stay_400() {
    let config = with_model_aliases(&["claude-sonnet-4-5=default", "gpt-4o-mini=default"]);
    let server = TestServer::start_custom(engine_config(), config, None).await;

    let message = server.messages(&anthropic_body("claude-sonnet-4-5")).await;
    assert_eq!(message.status(), 200);
    let chat = server.chat(&openai_body("gpt-4o-mini")).await;
    assert_eq!(chat.status(), 200);
    // Either family may use any alias: the table is the server's, not the API's.
    let crossed = server.chat(&openai_body("claude-sonnet-4-5")).await;
    assert_eq!(crossed.status(), 200);

    let r = server.messages(&anthropic_body("claude-haiku-4-5")).await;
    let parts = ["claude-haiku-4-5", "claude-sonnet-4-5", "--model-alias"];
    assert_anthropic_error(r, 400, "invalid_request_error", &parts).await;
    let r = server.chat(&openai_body("gpt-5")).await;
    let body = assert_error(r, 400, "invalid_request_error", "gpt-5", Some("model")).await;
    assert_eq!(body["error"]["code"], "model_not_found", "{body}");

    let models: Value = server.get("/v1/models").await.json().await.unwrap();
    let aliases = &models["data"][0]["aliases"];
    assert_eq!(
        *aliases,
        json!(["claude-sonnet-4-5", "gpt-4o-mini"]),
        "{models}"
    );
    // An alias names the model for retrieval too.
    let one = server.get("/v1/models/claude-sonnet-4-5").await;
    assert_eq!(one.status(), 200);
    assert_eq!(one.json::<Value>().await.unwrap(), models["data"][0]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catch_all_serves_any_name_and_an_alias_to_an_absent_model_is_400() {
    let config = with_model_aliases(&["*=default", "claude-opus-4=other-model"]);
    let server = TestServer::start_custom(engine_config(), config, None).await;
    for model in ["claude-haiku-4-5-20251001", "anything at all"] {
        let r = server.messages(&anthropic_body(model)).await;
        assert_eq!(r.status(), 200, "{model}");
        assert_eq!(server.chat(&openai_body(model)).await.status(), 200);
    }
    // A named alias wins over the catch-all, and its target must be served.
    let r = server.messages(&anthropic_body("claude-opus-4")).await;
    let parts = ["claude-opus-4", "other-model", "not loaded"];
    assert_anthropic_error(r, 400, "invalid_request_error", &parts).await;
    // The catch-all is not a name the model is listed under.
    let models: Value = server.get("/v1/models").await.json().await.unwrap();
    assert_eq!(models["data"][0]["aliases"], json!([]), "{models}");
    server.shutdown().await;
}
