//! The OpenAI-compatible API: wire types, request conversion and handlers.

pub mod chat;
pub mod convert;
pub mod stream;
pub mod tools;
pub mod types;
