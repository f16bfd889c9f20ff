//! `semantic bench ttft` end to end: the real binary spawns and restarts a
//! real `semantic serve` and prints its tables.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod support;
use support::model_path;

use std::process::Command;

/// The cells of the table row that starts with `| {state} |`.
fn row<'a>(stdout: &'a str, state: &str) -> Vec<&'a str> {
    let prefix = format!("| {state} |");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {state} row in:\n{stdout}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

#[test]
fn one_small_run_reports_all_four_states_with_hot_reuse() {
    let model = model_path();
    let out = Command::new(env!("CARGO_BIN_EXE_semantic"))
        .args(["bench", "ttft", "--contexts", "256", "--runs", "1"])
        .arg("--model")
        .arg(&model)
        .env_remove("SEMANTIC_MODEL")
        .output()
        .expect("semantic runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("### context of 256 corpus tokens"),
        "{stdout}"
    );
    assert!(stdout.contains("agents in 1 GiB"), "{stdout}");
    // Columns: state, min, median, max, vs cold, cached tokens, ...
    for state in ["cold", "hot", "warm", "disk"] {
        let cells = row(&stdout, state);
        let median: f64 = cells[2]
            .parse()
            .unwrap_or_else(|_| panic!("{state} median in {cells:?}"));
        assert!(median > 0.0, "{cells:?}");
    }
    assert_eq!(row(&stdout, "cold")[5], "0", "{stdout}");
    let hot_cached: u32 = row(&stdout, "hot")[5].parse().expect("hot cached tokens");
    assert!(hot_cached > 0, "{stdout}");
}
