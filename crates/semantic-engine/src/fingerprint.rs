//! Model fingerprint: identifies the exact model a KV state belongs to.
//!
//! KV cells are only meaningful for the weights that produced them, so every
//! persisted state is tagged with this fingerprint and a mismatch is a miss.
//! It hashes the GGUF's header region — all metadata (architecture,
//! hyper-parameters, tokenizer, quantization) and the tensor layout (names,
//! types, shapes, offsets) — without reading the weights.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::gguf::GgufHeader;
use crate::EngineError;

/// Byte length of the GGUF header region (everything before tensor data),
/// by our bounded reader; the same offset llama.cpp's
/// `gguf_get_data_offset` gives (`tests/gguf.rs` checks it on real models),
/// so fingerprints, which key every cache file, did not change with it.
fn header_len(path: &Path) -> Result<u64, EngineError> {
    GgufHeader::read_file(path)
        .map(|h| h.data_offset)
        .map_err(|e| EngineError::ModelLoad {
            path: path.to_owned(),
            reason: format!("invalid GGUF header: {e}"),
        })
}

/// Hex SHA-256 of the GGUF header region.
pub fn model_fingerprint(path: &Path) -> Result<String, EngineError> {
    fingerprint_of_header(path, header_len(path)?)
}

/// Hex SHA-256 of the first `len` bytes of `path` (the header region of a
/// header already read, [`crate::gguf::GgufHeader::data_offset`]).
pub fn fingerprint_of_header(path: &Path, len: u64) -> Result<String, EngineError> {
    let file = std::fs::File::open(path).map_err(|e| EngineError::ModelLoad {
        path: path.to_owned(),
        reason: format!("cannot read the file: {e}"),
    })?;
    let mut hasher = Sha256::new();
    let mut reader = file.take(len);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| EngineError::ModelLoad {
            path: path.to_owned(),
            reason: format!("cannot read the file: {e}"),
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}
