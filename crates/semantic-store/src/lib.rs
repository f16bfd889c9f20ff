//! Persistence adapter: every agent's KV state, on disk, across restarts.
//!
//! One safetensors file per agent and model ([`format`]), laid out so that
//! models never mix ([`layout`]), written atomically and read back verified
//! ([`DiskStore`]), in the background for the engine ([`PersistWriter`]),
//! and inspected across models by the CLI ([`list_all`], [`verify_all`]).
//! Beside the agents' files, the Responses API's stored conversations and
//! the multi-agent sessions live in one embedded database ([`ResponseDb`]).
//!
//! The store knows only the domain's types and the file system: the blob is
//! opaque llama.cpp state that the engine produces and restores.

pub mod catalog;
pub mod disk_store;
pub mod error;
pub mod format;
pub mod layout;
pub mod persistence;
pub mod record;
pub mod response_db;
pub mod telemetry;
pub mod writer;

#[cfg(test)]
mod disk_store_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod writer_tests;

pub use catalog::{
    find_agent, list_all, read_file_header, remove_everywhere, verify_all, verify_file, FileReport,
};
pub use disk_store::DiskStore;
pub use error::StoreError;
pub use format::FileHeader;
pub use persistence::StorePersistence;
pub use record::{AgentRecord, AgentRecordMeta, Compat, LoadOutcome};
pub use response_db::ResponseDb;
pub use writer::{OnWritten, PersistWriter, WriterStats};
