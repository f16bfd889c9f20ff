//! Architectural boundaries checked on the resolved dependency graph.
//!
//! Included by each crate's `tests/boundaries.rs` (`#[path]`), so the
//! `cargo tree` query and its parsing live in one place.

use std::process::Command;

/// Names of every crate in `package`'s normal (non-dev, non-build)
/// dependency tree, itself included.
pub fn normal_dependencies(package: &str, manifest_dir: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--offline", "-p", package, "-e", "normal"])
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(manifest_dir)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Fail if `package` depends, even transitively, on any of `forbidden`.
pub fn assert_no_dependency_on(package: &str, manifest_dir: &str, forbidden: &[&str]) {
    let names = normal_dependencies(package, manifest_dir);
    assert!(
        names.iter().any(|n| n == package),
        "unexpected tree: {names:?}"
    );
    for bad in forbidden {
        assert!(
            !names.iter().any(|n| n == bad),
            "{package} depends on {bad}: {names:?}"
        );
    }
}
