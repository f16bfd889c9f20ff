//! The compute engine of `semantic`.
//!
//! A dedicated thread owns the llama.cpp model context and runs a
//! continuous-batching [`scheduler`]; async callers reach it through an
//! [`EngineHandle`]. See ARCHITECTURE.md for the request path.

pub mod admission_gate;
pub mod agent_cache;
pub mod backend;
pub mod bench;
pub mod clock;
pub mod config;
pub mod corpus;
pub mod cost_model;
pub mod engine;
pub mod error;
pub mod fingerprint;
pub mod gguf;
pub mod grammar;
pub mod llama_compute;
pub mod model;
pub mod offload;
pub mod quality;
pub mod scheduler;
mod sequence;
pub mod stream;
pub mod system_info;
pub mod telemetry;

pub use agent_cache::AgentInfo;
pub use config::EngineConfig;
pub use engine::{EngineHandle, EngineSnapshot};
pub use error::EngineError;
pub use model::{LoadedModel, ModelInfo};
pub use scheduler::{EvictTarget, PrefixSharing};
pub use stream::{Completion, FinishHook, GenerationStream, PersistReport};
