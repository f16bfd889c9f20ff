//! The request-parser fuzz targets' committed corpora and every regression
//! input, replayed through the same functions the fuzzer drives (CI runs
//! this; `scripts/fuzz.sh` runs the fuzzer itself).

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

use std::path::Path;

use semantic_server::fuzzing;

/// Every file of `fuzz/{corpus,regressions}/<target>` through `run`.
fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut replayed = 0;
    for kind in ["corpus", "regressions"] {
        // A target's regressions folder exists once it has a regression.
        let Ok(entries) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for entry in entries {
            run(&std::fs::read(entry.unwrap().path()).unwrap());
            replayed += 1;
        }
    }
    assert!(replayed >= 5, "only {replayed} inputs for {target}");
}

#[test]
fn the_openai_chat_corpus_replays_without_a_panic() {
    replay("openai_chat", fuzzing::openai_chat);
}

#[test]
fn the_anthropic_messages_corpus_replays_without_a_panic() {
    replay("anthropic_messages", fuzzing::anthropic_messages);
}

#[test]
fn the_responses_corpus_replays_without_a_panic() {
    replay("responses", fuzzing::responses);
}
