//! Model fingerprint: identifies the exact model a KV state belongs to.
//!
//! KV cells are only meaningful for the weights that produced them, so every
//! persisted state is tagged with this fingerprint and a mismatch is a miss.
//! It hashes the GGUF's header region — all metadata (architecture,
//! hyper-parameters, tokenizer, quantization) and the tensor layout (names,
//! types, shapes, offsets) — without reading the weights.

use std::ffi::CString;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::EngineError;

/// Byte length of the GGUF header region (everything before tensor data).
fn header_len(path: &Path) -> Result<u64, EngineError> {
    let err = |reason: &str| EngineError::ModelLoad {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let c_path = CString::new(path.to_string_lossy().as_bytes())
        .map_err(|_| err("path contains a NUL byte"))?;
    let params = llama_cpp_sys_2::gguf_init_params {
        no_alloc: true,
        ctx: std::ptr::null_mut(),
    };
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the
    // call; with `no_alloc` gguf only parses the header. The returned
    // context is checked for NULL, used once and freed exactly once.
    let offset = unsafe {
        let ctx = llama_cpp_sys_2::gguf_init_from_file(c_path.as_ptr(), params);
        if ctx.is_null() {
            return Err(err("cannot parse the GGUF header"));
        }
        let offset = llama_cpp_sys_2::gguf_get_data_offset(ctx);
        llama_cpp_sys_2::gguf_free(ctx);
        offset
    };
    Ok(offset as u64)
}

/// Hex SHA-256 of the GGUF header region.
pub fn model_fingerprint(path: &Path) -> Result<String, EngineError> {
    let len = header_len(path)?;
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
