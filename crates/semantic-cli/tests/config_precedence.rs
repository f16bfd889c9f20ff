//! `semantic config` shows the effective `serve` settings and where each
//! came from: flag > env > file > default. Bad files fail naming the key.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::model_path;

use std::process::{Command, Output};

fn config(file: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("semantic.toml");
    std::fs::write(&path, file).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_semantic"));
    command
        .arg("config")
        .arg("--config")
        .arg(&path)
        .arg("--model")
        .arg(model_path())
        .args(args);
    // Only the variables this test sets may reach the child.
    for (key, _) in std::env::vars() {
        if key.starts_with("SEMANTIC_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command.output().unwrap()
}

fn line<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{stdout}"))
}

#[test]
fn flags_beat_env_beat_file_beat_defaults() {
    let file = "port = 7001\nqueue-capacity = 11\nkv_type = \"q8_0\"\nshutdown_timeout = \"12s\"\n";
    let out = config(
        file,
        &["--port", "7002"],
        &[
            ("SEMANTIC_QUEUE_CAPACITY", "22"),
            ("SEMANTIC_STEP_TOKEN_BUDGET", "256"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(line(&stdout, "port"), "port = 7002  # flag");
    assert_eq!(
        line(&stdout, "queue-capacity"),
        "queue-capacity = 22  # env"
    );
    assert_eq!(line(&stdout, "kv-type"), "kv-type = \"q8_0\"  # file");
    assert_eq!(
        line(&stdout, "shutdown-timeout"),
        "shutdown-timeout = \"12s\"  # file"
    );
    assert_eq!(
        line(&stdout, "step-token-budget"),
        "step-token-budget = 256  # env"
    );
    assert_eq!(
        line(&stdout, "max-sequences"),
        "max-sequences = 32  # default"
    );
}

#[test]
fn unknown_keys_and_bad_values_fail_naming_file_and_key() {
    let out = config("kv_budgett = \"1GiB\"\n", &[], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown setting `kv_budgett`") && err.contains("semantic.toml"),
        "{err}"
    );

    let out = config("port = \"eighty\"\n", &[], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("setting `port`") && err.contains("eighty"),
        "{err}"
    );

    let out = config("port = [\n", &[], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid TOML"));

    // Invalid combinations are caught by the same validation `serve` runs.
    let out = config("max_sequences = 0\n", &[], &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("max_sequences"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_shipped_deploy_config_is_accepted() {
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/semantic.toml");
    let out = config(&std::fs::read_to_string(shipped).unwrap(), &[], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(line(&stdout, "kv-type"), "kv-type = \"q8_0\"  # file");
}

#[test]
fn max_tokens_settings_are_read_from_file_env_and_flag_and_checked() {
    let out = config(
        "default_max_tokens = 512\nstrict_max_tokens = true\n",
        &["--max-tokens-cap", "2048"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        line(&stdout, "default-max-tokens"),
        "default-max-tokens = 512  # file"
    );
    assert_eq!(
        line(&stdout, "max-tokens-cap"),
        "max-tokens-cap = 2048  # flag"
    );
    assert_eq!(
        line(&stdout, "strict-max-tokens"),
        "strict-max-tokens = true  # file"
    );

    let out = config("", &[], &[("SEMANTIC_DEFAULT_MAX_TOKENS", "64")]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        line(&stdout, "default-max-tokens"),
        "default-max-tokens = 64  # env"
    );

    // A default above the cap could never be applied as set.
    let out = config(
        "default_max_tokens = 4096\nmax_tokens_cap = 100\n",
        &[],
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-tokens-cap"), "{err}");
    let out = config("max_tokens_cap = 0\n", &[], &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("max_tokens_cap"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
