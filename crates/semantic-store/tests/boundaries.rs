//! The store is a persistence adapter: it must never depend on the engine,
//! llama.cpp, the HTTP layer or an async runtime.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

#[path = "../../../tests/shared/dependency_tree.rs"]
mod dependency_tree;

#[test]
fn store_depends_on_the_domain_only() {
    let forbidden = [
        "semantic-engine",
        "semantic-server",
        "llama-cpp-2",
        "llama-cpp-sys-2",
        "tokio",
        "axum",
    ];
    dependency_tree::assert_no_dependency_on(
        "semantic-store",
        env!("CARGO_MANIFEST_DIR"),
        &forbidden,
    );
    let names = dependency_tree::normal_dependencies("semantic-store", env!("CARGO_MANIFEST_DIR"));
    assert!(names.iter().any(|n| n == "semantic-domain"), "{names:?}");
}
