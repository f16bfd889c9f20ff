//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)]

pub mod serve_process;

use std::path::PathBuf;

/// The test model: `SEMANTIC_TEST_MODEL`, else the one `scripts/fetch-model.sh` fetched.
pub fn model_path() -> PathBuf {
    std::env::var("SEMANTIC_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../models/SmolLM2-135M-Instruct.Q4_1.gguf")
        })
}
