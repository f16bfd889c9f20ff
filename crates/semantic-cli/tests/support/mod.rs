//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)]

pub mod serve_process;

use std::path::PathBuf;

/// The test model: `SEMANTIC_TEST_MODEL`, else the one `scripts/fetch-model.sh` fetched.
pub fn model_path() -> PathBuf {
    test_model("SEMANTIC_TEST_MODEL", "SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The second test model, Gemma 3 270M (sliding-window attention):
/// `SEMANTIC_TEST_MODEL_SWA`, else the one `scripts/fetch-model.sh` fetched.
pub fn sliding_window_model_path() -> PathBuf {
    test_model("SEMANTIC_TEST_MODEL_SWA", "gemma-3-270m-q4_k_m.gguf")
}

fn test_model(env: &str, file: &str) -> PathBuf {
    std::env::var(env).map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../models")
            .join(file)
    })
}
