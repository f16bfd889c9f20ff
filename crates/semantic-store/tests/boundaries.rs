//! The store is a persistence adapter: it must never depend on the engine,
//! llama.cpp, the HTTP layer or an async runtime.

use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "semantic-engine",
    "semantic-server",
    "llama-cpp-2",
    "llama-cpp-sys-2",
    "tokio",
    "axum",
];

#[test]
fn store_depends_on_the_domain_only() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            "semantic-store",
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
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(names.contains(&"semantic-domain"), "{tree}");
    for forbidden in FORBIDDEN {
        assert!(
            !names.contains(forbidden),
            "semantic-store depends on {forbidden}:\n{tree}"
        );
    }
}
