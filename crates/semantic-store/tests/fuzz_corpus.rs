//! The `store_file` fuzz target's committed corpus and every regression
//! input, replayed through the same function the fuzzer drives (CI runs
//! this; `scripts/fuzz.sh` runs the fuzzer itself).

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

#[path = "../../../tests/shared/fuzz_corpus.rs"]
mod fuzz_corpus;

use std::path::{Path, PathBuf};

use semantic_domain::{AgentId, AgentKey, KvType};
use semantic_store::format::{checksum, decode_file, encode_header, fuzz_file};
use semantic_store::AgentRecordMeta;

fn fuzz_dir(kind: &str) -> PathBuf {
    fuzz_corpus::dir(kind, "store_file")
}

#[test]
fn the_store_file_corpus_replays_without_a_panic() {
    let replayed = fuzz_corpus::replay("store_file", fuzz_file);
    assert!(
        replayed >= 2,
        "only {replayed} inputs in {}",
        fuzz_dir("corpus").display()
    );
    let valid = std::fs::read(fuzz_dir("corpus").join("valid-agent.safetensors")).unwrap();
    decode_file(&valid, Path::new("valid-agent.safetensors")).unwrap();
}

/// An agent file as the store writes it.
fn agent_file(tokens: Vec<i32>, blob: &[u8]) -> Vec<u8> {
    let meta = AgentRecordMeta {
        agent: AgentKey::open(AgentId::parse("agent-1").unwrap()),
        model_fingerprint: "cd2d87a25589b59f222688858608478fd7ed55b0cefdc3e96076591029713ce4"
            .into(),
        engine_build: "b1234-fuzz".into(),
        kv_type: KvType::Q8_0,
        tokens,
        kv_bytes: blob.len() as u64,
        created_unix_ms: 1_700_000_000_000,
    };
    let mut bytes = encode_header(&meta, checksum(blob)).unwrap();
    bytes.extend_from_slice(blob);
    bytes
}

/// Writes the seed inputs (`cargo test -p semantic-store --test fuzz_corpus
/// -- --ignored`): valid files from the store's own encoder, one with an
/// empty blob, one with its blob corrupted.
#[test]
#[ignore = "regenerates fuzz/corpus/store_file"]
fn write_seed_corpus() {
    let dir = fuzz_dir("corpus");
    let blob: Vec<u8> = (0..64u8).collect();
    std::fs::write(
        dir.join("valid-agent.safetensors"),
        agent_file(vec![1, 2, 3, 42], &blob),
    )
    .unwrap();
    std::fs::write(dir.join("empty-blob.safetensors"), agent_file(vec![], &[])).unwrap();
    let mut flipped = agent_file(vec![7], &blob);
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    std::fs::write(dir.join("checksum-mismatch.safetensors"), flipped).unwrap();
}
