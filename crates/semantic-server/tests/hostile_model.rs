//! A hostile or broken chat template inside a real GGUF (issue 14 part 4):
//! the SmolLM2 test model re-serialised with `tokenizer.chat_template`
//! replaced. The model loads (the template compiles); every request that
//! renders it fails within seconds with a 400 naming the chat template,
//! in the family's envelope — never a hang, a 500 or unbounded memory.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::anthropic::assert_anthropic_error;
use support::*;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use semantic_engine::gguf::{copy_with_header, GgufValue};
use semantic_engine::EngineConfig;
use serde_json::json;

/// The test model with `template` as its chat template, in `dir`.
fn model_with_template(dir: &Path, name: &str, template: &str) -> PathBuf {
    let path = dir.join(format!("{name}.gguf"));
    let template = GgufValue::String(template.as_bytes().to_vec());
    copy_with_header(&model_path(), &path, |h| {
        h.set("tokenizer.chat_template", template)
    })
    .unwrap();
    path
}

async fn serve(model: PathBuf) -> TestServer {
    TestServer::start_with(EngineConfig {
        model_path: model,
        ..engine_config()
    })
    .await
}

/// Every family refuses a turn the template cannot render, within seconds.
async fn assert_template_refused(server: &TestServer, message_part: &str) {
    let started = Instant::now();
    let r = server.chat(&short_chat(2)).await;
    assert_error(
        r,
        400,
        "invalid_request_error",
        message_part,
        Some("messages"),
    )
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "OpenAI chat took {took:?}");
    eprintln!("{message_part:?}: refused in {took:?}");

    let started = Instant::now();
    let body = json!({"model": "default", "max_tokens": 2,
        "messages": [{"role": "user", "content": "Say hello."}]});
    let r = server.post_json("/v1/messages", &body, None).await;
    assert_anthropic_error(
        r,
        400,
        "invalid_request_error",
        &["chat template", message_part],
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_template_fails_the_request_with_a_clear_400() {
    let dir = tempfile::tempdir().unwrap();
    // 10^10 iterations: stopped by the instruction budget (fuel).
    let endless =
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
    let server = serve(model_with_template(dir.path(), "endless", endless)).await;
    assert_template_refused(&server, "ran more than 20000000 instructions").await;
    server.shutdown().await;

    // minijinja refuses a range this long before the first iteration.
    let huge_range =
        "{% for i in range(999999999) %}{% for j in range(999999999) %}{% endfor %}{% endfor %}";
    let server = serve(model_with_template(dir.path(), "huge-range", huge_range)).await;
    assert_template_refused(&server, "range has too many elements").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_that_emit_gigabytes_fail_the_request_with_a_clear_400() {
    let dir = tempfile::tempdir().unwrap();
    // One gigabyte in one expression: minijinja refuses to build it.
    let one_go = "{{ 'x' * 1000000000 }}";
    let server = serve(model_with_template(dir.path(), "one-go", one_go)).await;
    assert_template_refused(&server, "repeated string is too large").await;
    server.shutdown().await;

    // Gigabytes printed a piece at a time: stopped at the output cap.
    let printed = "{% for i in range(100000) %}{% for j in range(100000) %}{{ 'x' * 100000 }}{% endfor %}{% endfor %}";
    let server = serve(model_with_template(dir.path(), "printed", printed)).await;
    assert_template_refused(&server, "produced more than 67108864 bytes").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_that_build_gigabytes_without_printing_fail_with_a_clear_400() {
    let dir = tempfile::tempdir().unwrap();
    // A string doubled in a loop: a few dozen instructions, exabytes if
    // nothing stopped it, and nothing printed for the output cap to see.
    let doubled = "{% set ns = namespace(s='x' * 1000) %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}";
    let server = serve(model_with_template(dir.path(), "doubled", doubled)).await;
    assert_template_refused(&server, "built more than 268435456 bytes").await;
    server.shutdown().await;

    // A small list of one large string, joined: gigabytes in one call.
    let joined = "{% set s = 'x' * 10000000 %}{{ ([s] * 1000)|join|length }}";
    let server = serve(model_with_template(dir.path(), "joined", joined)).await;
    assert_template_refused(&server, "built more than 268435456 bytes").await;
    server.shutdown().await;
}
