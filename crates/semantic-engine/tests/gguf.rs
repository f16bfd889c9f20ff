//! Our GGUF header reader on the real test models: the same data offset as
//! llama.cpp (so model fingerprints, which key every cache file, are
//! unchanged), an exact round trip, and crafted copies llama.cpp loads.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod common;

use std::ffi::CString;
use std::path::Path;

use semantic_engine::gguf::{copy_with_header, write_header, GgufHeader, GgufValue};

/// llama.cpp's own answer: `gguf_get_data_offset` of a header-only parse
/// (what `fingerprint.rs` used before our reader).
fn llama_data_offset(path: &Path) -> u64 {
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    let params = llama_cpp_sys_2::gguf_init_params {
        no_alloc: true,
        ctx: std::ptr::null_mut(),
    };
    // SAFETY: `c_path` is NUL-terminated and outlives the call; the context
    // is checked for NULL and freed exactly once.
    unsafe {
        let ctx = llama_cpp_sys_2::gguf_init_from_file(c_path.as_ptr(), params);
        assert!(!ctx.is_null(), "llama.cpp cannot parse {}", path.display());
        let offset = llama_cpp_sys_2::gguf_get_data_offset(ctx);
        llama_cpp_sys_2::gguf_free(ctx);
        offset as u64
    }
}

fn check_real_model(path: &Path) {
    let header = GgufHeader::read_file(path).unwrap();
    assert_eq!(
        header.data_offset,
        llama_data_offset(path),
        "{}",
        path.display()
    );
    // Serialised again, the header is byte for byte the file's.
    let mut written = Vec::new();
    assert_eq!(
        write_header(&header, &mut written).unwrap(),
        header.data_offset
    );
    let original = std::fs::read(path).unwrap();
    assert!(written == original[..written.len()], "{}", path.display());
}

#[test]
fn data_offsets_match_llama_cpp_and_headers_round_trip() {
    check_real_model(&common::model_path());
    let header = GgufHeader::read_file(&common::model_path()).unwrap();
    assert!(header.get("tokenizer.chat_template").is_some());
    let swa = common::sliding_window_model_path();
    if swa.is_file() {
        check_real_model(&swa);
    }
}

#[test]
fn the_fingerprint_of_the_test_model_is_unchanged() {
    // Recorded with the llama.cpp-based header length this reader replaced;
    // changing it would orphan every user's cache files.
    if std::env::var_os("SEMANTIC_TEST_MODEL").is_some() {
        return;
    }
    let fp = semantic_engine::fingerprint::model_fingerprint(&common::model_path()).unwrap();
    assert_eq!(fp, SMOLLM_FINGERPRINT);
}

const SMOLLM_FINGERPRINT: &str = "cd2d87a25589b59f222688858608478fd7ed55b0cefdc3e96076591029713ce4";

#[test]
fn a_copy_with_one_key_replaced_is_accepted_by_llama_cpp() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.gguf");
    copy_with_header(&common::model_path(), &copy, |h| {
        h.set(
            "tokenizer.chat_template",
            GgufValue::String(b"{{ messages[0].content }}".to_vec()),
        )
    })
    .unwrap();
    let header = GgufHeader::read_file(&copy).unwrap();
    assert_eq!(header.data_offset, llama_data_offset(&copy));
    let template = header.get("tokenizer.chat_template").unwrap();
    assert_eq!(template.as_str(), Some("{{ messages[0].content }}"));
}
