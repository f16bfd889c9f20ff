//! The `gguf_header` fuzz target's committed corpus and every regression
//! input, replayed through the same function the fuzzer drives (CI runs
//! this; `scripts/fuzz.sh` runs the fuzzer itself).

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod common;
#[path = "../../../tests/shared/fuzz_corpus.rs"]
mod fuzz_corpus;

use std::path::PathBuf;

use semantic_engine::gguf::{write_header, GgufArray, GgufHeader, GgufValue, TensorInfo};

fn fuzz_dir(kind: &str) -> PathBuf {
    fuzz_corpus::dir(kind, "gguf_header")
}

#[test]
fn the_gguf_header_corpus_replays_without_a_panic() {
    let replayed = fuzz_corpus::replay("gguf_header", semantic_engine::gguf::fuzz_header);
    assert!(
        replayed >= 3,
        "only {replayed} inputs in {}",
        fuzz_dir("corpus").display()
    );
}

/// Writes the seed inputs (`cargo test -p semantic-engine --test fuzz_corpus
/// -- --ignored`): a tiny valid GGUF of every value type, and the first 4 KiB
/// of each real test model (its header cut short: the truncation paths).
#[test]
#[ignore = "regenerates fuzz/corpus/gguf_header"]
fn write_seed_corpus() {
    let dir = fuzz_dir("corpus");
    let tiny = GgufHeader {
        version: 3,
        metadata: vec![
            ("general.alignment".into(), GgufValue::U32(16)),
            (
                "general.architecture".into(),
                GgufValue::String(b"llama".to_vec()),
            ),
            ("a.u8".into(), GgufValue::U8(1)),
            ("a.i8".into(), GgufValue::I8(-1)),
            ("a.u16".into(), GgufValue::U16(2)),
            ("a.i16".into(), GgufValue::I16(-2)),
            ("a.i32".into(), GgufValue::I32(-4)),
            ("a.f32".into(), GgufValue::F32(0.5)),
            ("a.bool".into(), GgufValue::Bool(true)),
            ("a.u64".into(), GgufValue::U64(8)),
            ("a.i64".into(), GgufValue::I64(-8)),
            ("a.f64".into(), GgufValue::F64(0.25)),
            (
                "tokenizer.ggml.tokens".into(),
                GgufValue::Array(GgufArray::String(vec![b"<s>".to_vec(), b"hi".to_vec()])),
            ),
            (
                "nested".into(),
                GgufValue::Array(GgufArray::Array(vec![
                    GgufArray::F32(vec![1.0]),
                    GgufArray::Bool(vec![]),
                ])),
            ),
        ],
        tensors: vec![TensorInfo {
            name: b"t".to_vec(),
            dims: vec![2, 2],
            ggml_type: 0,
            offset: 0,
        }],
        alignment: 16,
        data_offset: 0,
    };
    let mut bytes = Vec::new();
    write_header(&tiny, &mut bytes).unwrap();
    bytes.extend_from_slice(&[0u8; 16]);
    std::fs::write(dir.join("tiny-all-types.gguf"), bytes).unwrap();
    for (name, path) in [
        ("smollm2-first-4k.gguf", common::model_path()),
        ("gemma3-first-4k.gguf", common::sliding_window_model_path()),
    ] {
        let head: Vec<u8> = std::fs::read(path)
            .unwrap()
            .into_iter()
            .take(4096)
            .collect();
        std::fs::write(dir.join(name), head).unwrap();
    }
}
