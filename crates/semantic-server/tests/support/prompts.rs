//! Requests both API families accept as they are, and the size of the
//! prompt the server templates from them.

use semantic_domain::chat::ChatMessage;
use semantic_engine::EngineHandle;
use serde_json::{json, Value};

pub const SYSTEM: &str = "You are a helpful assistant.";
pub const QUESTION: &str = "What is the capital of France?";

/// The templated prompt of `SYSTEM` + `QUESTION`, tokenized here.
pub fn greedy_prompt_tokens(engine: &EngineHandle) -> u64 {
    let messages = [ChatMessage::system(SYSTEM), ChatMessage::user(QUESTION)];
    engine.model().tokenize_chat(&messages, None).unwrap().len() as u64
}

/// A streaming request whose greedy answer runs to `max_tokens` (measured:
/// SmolLM2 counts on and on), so a small sampled count proves cancellation.
pub fn long_stream_body() -> Value {
    json!({
        "model": "default",
        "messages": [{"role": "user", "content": "Count from 1 to 1000, separated by commas."}],
        "temperature": 0,
        "max_tokens": 2000,
        "stream": true,
    })
}
