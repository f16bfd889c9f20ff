//! The domain model of `semantic`.
//!
//! Pure types and rules shared by every adapter: agent ids and tenants, token sequences,
//! sampling parameters and the `max_tokens` rule, generation events,
//! stop-string matching, streaming UTF-8 decoding, KV block accounting,
//! chat-template rendering, tool use (tool prompts, output grammars,
//! tool-call parsing), and the persistence ports (agents' KV, stored
//! responses).
//! This crate performs no I/O, spawns no threads and knows nothing of
//! llama.cpp, tokio or HTTP; adapters depend on it, never the reverse.

pub mod block_pool;
pub mod chat;
pub mod chat_template;
pub mod generation;
pub mod grammar;
pub mod ids;
pub mod kv_state;
pub mod kv_type;
pub mod max_tokens;
pub mod persistence;
pub mod quality;
pub mod responses;
pub mod sampling;
pub mod sessions;
pub mod stop;
pub mod tenant;
pub mod tokens;
pub mod tools;
pub mod utf8_stream;

pub use generation::{CacheSource, FinishReason, GenerateRequest, GenerationEvent, Usage};
pub use grammar::Grammar;
pub use ids::{AgentId, InvalidAgentId, RequestId};
pub use kv_state::KvState;
pub use kv_type::{KvGeometry, KvType};
pub use max_tokens::{MaxTokensPolicy, MaxTokensRefused, MaxTokensSource, ResolvedMaxTokens};
pub use sampling::{InvalidSampling, SamplingParams};
pub use tenant::{AgentKey, InvalidTenant, TenantId};
pub use tokens::TokenId;
