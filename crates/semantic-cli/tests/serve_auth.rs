//! `semantic serve` refuses an open API beyond loopback, before loading
//! anything, with an error that names the settings to change.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::process::{Command, Output};

fn serve(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_semantic"))
        .arg("serve")
        .arg("--cache-dir")
        .arg(cache.path())
        .args(args)
        .env_remove("SEMANTIC_API_KEYS")
        .env_remove("SEMANTIC_API_KEY_FILE")
        .env_remove("SEMANTIC_ALLOW_UNAUTHENTICATED")
        // Never reached: the check comes first. A missing model proves it.
        .args(["--model", "/nonexistent/model.gguf", "--port", "0"])
        .output()
        .expect("semantic runs")
}

#[test]
fn a_non_loopback_host_without_a_key_is_refused_naming_the_settings() {
    let out = serve(&["--host", "0.0.0.0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for setting in ["--api-key", "SEMANTIC_API_KEYS", "--allow-unauthenticated"] {
        assert!(stderr.contains(setting), "{setting} missing from: {stderr}");
    }
    assert!(
        !stderr.contains("model"),
        "refused before the model: {stderr}"
    );
}

#[test]
fn an_unreadable_key_file_and_a_bad_key_are_refused_naming_them() {
    let out = serve(&["--api-key-file", "/nonexistent/keys.txt"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--api-key-file"), "{stderr}");

    let out = serve(&["--api-key", "has space"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--api-key"), "{stderr}");
}

#[test]
fn with_a_key_a_non_loopback_host_passes_the_check() {
    // Gets as far as the model: the refusal did not fire.
    let out = serve(&["--host", "0.0.0.0", "--api-key", "k1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("--allow-unauthenticated"), "{stderr}");
    assert!(stderr.contains("model"), "{stderr}");
}

#[test]
fn a_key_file_with_a_bad_tenant_line_is_refused_naming_the_line_not_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "# team a\nsk-good tenant=team-a\nsk-secret team-b\n").unwrap();
    let out = serve(&["--api-key-file", keys.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("tenant=NAME"), "{stderr}");
    assert!(!stderr.contains("sk-secret"), "the key leaked: {stderr}");

    // Grouped keys are accepted: the start-up gets as far as the model.
    std::fs::write(&keys, "sk-a tenant=team-a\nsk-b tenant=team-a\nsk-c\n").unwrap();
    let out = serve(&["--api-key-file", keys.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("model"), "{stderr}");
    assert!(!stderr.contains("api-key-file"), "{stderr}");
}
