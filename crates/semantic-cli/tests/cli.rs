//! The `semantic` binary, run as a user would: real process, real model.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::model_path;

use std::process::{Command, Output};

fn semantic(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_semantic"))
        .args(args)
        .env_remove("SEMANTIC_MODEL")
        .output()
        .expect("semantic runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn version_reports_commit_llama_build_and_cpu_features() {
    let out = semantic(&["version"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains(env!("CARGO_PKG_VERSION")), "{stdout}");
    assert!(stdout.contains("git commit:"), "{stdout}");
    assert!(stdout.contains("llama-cpp-sys-2"), "{stdout}");
    // The portable build must still use the AVX2/FMA kernels on x86-64.
    if cfg!(target_arch = "x86_64") {
        assert!(
            stdout.contains("AVX2") && stdout.contains("FMA"),
            "{stdout}"
        );
    }
}

#[test]
fn generate_streams_a_greedy_answer_to_stdout() {
    let model = model_path();
    let out = semantic(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--system",
        "You are a helpful assistant.",
        "--prompt",
        "What is the capital of France?",
        "--temperature",
        "0",
        "--max-tokens",
        "24",
        "--context-tokens",
        "2048",
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Paris"), "stdout: {stdout}");
    // Logs go to stderr, so stdout is only the reply.
    assert!(!stdout.contains("INFO"), "stdout: {stdout}");
}

#[test]
fn bad_input_fails_with_a_message_not_a_panic() {
    let missing = semantic(&[
        "generate",
        "--prompt",
        "hi",
        "--model",
        "/nonexistent/m.gguf",
    ]);
    assert!(!missing.status.success());
    let err = text(&missing.stderr);
    assert!(
        err.contains("model file not found") && err.contains("/nonexistent/m.gguf"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let model = model_path();
    let empty = semantic(&[
        "generate",
        "--prompt",
        " ",
        "--model",
        model.to_str().unwrap(),
    ]);
    assert!(!empty.status.success());
    assert!(text(&empty.stderr).contains("--prompt is empty"));

    let zero = semantic(&[
        "generate",
        "--prompt",
        "hi",
        "--max-tokens",
        "0",
        "--model",
        model.to_str().unwrap(),
    ]);
    assert!(!zero.status.success());
    let err = text(&zero.stderr);
    assert!(err.contains("max_tokens"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let bad_kv = semantic(&["generate", "--prompt", "hi", "--kv-type", "q5_1"]);
    assert!(!bad_kv.status.success());
    assert!(text(&bad_kv.stderr).contains("q5_1"));
}
