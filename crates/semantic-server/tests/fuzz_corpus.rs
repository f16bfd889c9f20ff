//! The request-parser fuzz targets' committed corpora and every regression
//! input, replayed through the same functions the fuzzer drives (CI runs
//! this; `scripts/fuzz.sh` runs the fuzzer itself).

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

#[path = "../../../tests/shared/fuzz_corpus.rs"]
mod fuzz_corpus;

use semantic_server::fuzzing;

/// Every committed input of `target` through `run`; at least 5 of them.
fn replay(target: &str, run: fn(&[u8])) {
    let replayed = fuzz_corpus::replay(target, run);
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
