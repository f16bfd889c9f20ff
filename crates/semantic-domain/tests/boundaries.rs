//! The domain crate's architectural boundary, checked on the resolved
//! dependency graph: it must never (even transitively) pull in an async
//! runtime, a web framework, llama.cpp or a telemetry exporter.

use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "tokio",
    "axum",
    "hyper",
    "tower",
    "llama-cpp-2",
    "llama-cpp-sys-2",
    "opentelemetry",
    "opentelemetry-otlp",
    "tracing-opentelemetry",
    "prometheus",
    "metrics",
    "reqwest",
];

#[test]
fn domain_crate_has_no_io_runtime_engine_or_telemetry_dependencies() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            "semantic-domain",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"semantic-domain"),
        "unexpected tree: {tree}"
    );
    for bad in FORBIDDEN {
        assert!(
            !names.contains(bad),
            "semantic-domain depends on {bad}:\n{tree}"
        );
    }
}
