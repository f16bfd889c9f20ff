//! Replaying a fuzz target's committed inputs in `cargo test` (so CI runs
//! them on stable; `scripts/fuzz.sh` runs the fuzzers themselves).
//!
//! Included by each crate's `tests/fuzz_corpus.rs` (`#[path]`), so the
//! folder layout and the walk over it live in one place.

use std::path::{Path, PathBuf};

/// `fuzz/<kind>/<target>` (`kind`: `corpus` or `regressions`).
pub fn dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target)
}

/// Every file of `fuzz/corpus/<target>` and `fuzz/regressions/<target>`
/// through `run`; returns how many were replayed.
pub fn replay(target: &str, run: impl Fn(&[u8])) -> usize {
    let mut replayed = 0;
    for kind in ["corpus", "regressions"] {
        // A target's regressions folder exists once it has a regression.
        let Ok(entries) = std::fs::read_dir(dir(kind, target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a readable fuzz folder").path();
            run(&std::fs::read(&path).expect("a readable fuzz input"));
            replayed += 1;
        }
    }
    replayed
}
