//! The domain crate's architectural boundary, checked on the resolved
//! dependency graph: it must never (even transitively) pull in an async
//! runtime, a web framework, llama.cpp or a telemetry exporter.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

#[path = "../../../tests/shared/dependency_tree.rs"]
mod dependency_tree;

#[test]
fn domain_crate_has_no_io_runtime_engine_or_telemetry_dependencies() {
    let forbidden = [
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
    dependency_tree::assert_no_dependency_on(
        "semantic-domain",
        env!("CARGO_MANIFEST_DIR"),
        &forbidden,
    );
}
