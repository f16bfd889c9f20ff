//! Engine errors: everything a caller or an operator can cause, with a
//! message that names what was wrong.

use std::path::PathBuf;

use semantic_domain::InvalidSampling;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model file not found: {}", .0.display())]
    ModelNotFound(PathBuf),
    #[error("failed to load model {}: {reason}", path.display())]
    ModelLoad { path: PathBuf, reason: String },
    #[error("failed to create the llama.cpp context: {0}")]
    ContextCreate(String),
    #[error("invalid engine setting {setting}: {reason}")]
    InvalidConfig {
        setting: &'static str,
        reason: String,
    },
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("the prompt has {tokens} tokens but the context window holds {limit} ({why})")]
    PromptTooLong {
        tokens: u32,
        limit: u32,
        /// What sets the window: the KV pool or the model's training context.
        why: String,
    },
    /// Under `--strict-max-tokens`: more than the window has left asked for
    /// (otherwise clamped to it).
    #[error("max_tokens {requested} exceeds the {available} tokens left in the context window after the {prompt}-token prompt")]
    MaxTokensTooLarge {
        requested: u32,
        available: u32,
        prompt: u32,
    },
    /// Under `--strict-max-tokens`: more than `--max-tokens-cap` asked for.
    #[error("max_tokens {requested} exceeds this server's limit of {cap} tokens per request (--max-tokens-cap)")]
    MaxTokensOverCap { requested: u32, cap: u32 },
    #[error("token id {0} is not in the model's vocabulary")]
    InvalidToken(i32),
    #[error(transparent)]
    InvalidSampling(#[from] InvalidSampling),
    #[error("the request queue is full ({capacity} waiting); retry later")]
    QueueFull { capacity: usize },
    #[error("the engine is shutting down and accepts no new requests")]
    ShuttingDown,
    /// Draining: requests in flight finish, new ones are refused.
    #[error("the server is draining for shutdown and accepts no new requests; retry on another instance")]
    Draining,
    #[error("the engine thread has stopped")]
    Stopped,
    #[error("{0}")]
    InvalidSchema(String),
    #[error("{0}")]
    InvalidGrammar(String),
    #[error("chat template error: {0}")]
    Template(#[from] semantic_domain::chat_template::TemplateError),
}
