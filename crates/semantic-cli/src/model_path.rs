//! Where the model file comes from when `--model` is not given.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// File name of the default model (SmolLM2-135M-Instruct, Q4_1, Apache-2.0).
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// File name of the test suite's second model (Gemma 3 270M Q4_K_M,
/// sliding-window attention), which the set-up scripts put beside it.
pub const SECOND_MODEL_FILE: &str = "gemma-3-270m-q4_k_m.gguf";

/// Places the default model is looked for, in order.
pub fn default_candidates() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("models")];
    if let Some(data) = dirs::data_dir() {
        dirs.push(data.join("semantic").join("models"));
    }
    dirs.into_iter()
        .map(|d| d.join(DEFAULT_MODEL_FILE))
        .collect()
}

/// The explicit path, else the first default location that exists.
pub fn resolve(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    let candidates = default_candidates();
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "no --model given and the default model is not at {}; fetch it with scripts/fetch-model.sh \
         or pass --model PATH to any GGUF file",
        looked.join(" or ")
    )
}
