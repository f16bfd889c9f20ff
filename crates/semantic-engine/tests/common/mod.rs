//! Shared set-up for the real-model tests (each test binary uses a subset).
#![allow(dead_code)]

use std::path::PathBuf;

use semantic_domain::chat::ChatMessage;
use semantic_domain::{GenerateRequest, SamplingParams, TokenId};
use semantic_engine::corpus::Corpus;
use semantic_engine::{EngineConfig, EngineHandle};

/// The default model: `SEMANTIC_TEST_MODEL`, else the one `scripts/fetch-model.sh` fetched.
pub fn model_path() -> PathBuf {
    test_model("SEMANTIC_TEST_MODEL", "SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The model `env` names, else `models/<file>` as `scripts/fetch-model.sh` fetched it.
fn test_model(env: &str, file: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(file);
    assert!(
        path.is_file(),
        "test model missing at {}; run scripts/fetch-model.sh",
        path.display()
    );
    path
}

pub fn config() -> EngineConfig {
    let mut c = EngineConfig::new(model_path());
    c.context_tokens = 8192;
    c.max_sequences = 8;
    c
}

pub fn start(config: EngineConfig) -> EngineHandle {
    EngineHandle::start(config, |_| {}).expect("engine starts")
}

pub fn chat_prompt(engine: &EngineHandle, question: &str) -> Vec<TokenId> {
    engine
        .model()
        .tokenize_chat(
            &[
                ChatMessage::system("You are a helpful assistant."),
                ChatMessage::user(question),
            ],
            None,
        )
        .expect("template renders")
}

pub fn greedy(prompt: Vec<TokenId>, max_tokens: u32) -> GenerateRequest {
    GenerateRequest::new(prompt, SamplingParams::greedy(max_tokens), None)
}

/// The first `n` tokens of the generated benchmark prose (variant 0).
pub fn corpus_tokens(engine: &EngineHandle, n: usize) -> Vec<TokenId> {
    Corpus::generated()
        .tokens(engine.model(), n, 0)
        .expect("generated prose holds enough tokens")
}

/// The second test model, Gemma 3 270M (sliding-window attention, window
/// 512): `SEMANTIC_TEST_MODEL_SWA`, else the one `scripts/fetch-model.sh`
/// fetched.
pub fn sliding_window_model_path() -> PathBuf {
    test_model("SEMANTIC_TEST_MODEL_SWA", "gemma-3-270m-q4_k_m.gguf")
}
