//! Store errors. Every message names the file (or agent) and what was wrong,
//! because the person reading it is usually looking at a cache directory.

use std::io;
use std::path::{Path, PathBuf};

use semantic_domain::AgentKey;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The operating system refused: permissions, full disk, a vanished directory.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is damaged: truncated, bad header, checksum mismatch or
    /// inconsistent metadata. It must never be loaded; callers quarantine it.
    #[error("corrupt KV file {}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// The file is intact as far as we can tell but written by a newer (or
    /// foreign) format version. It is skipped, not quarantined, so a
    /// downgrade does not destroy caches a newer build wrote.
    #[error("unsupported KV file {}: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
    /// No file for this agent under this model.
    #[error("no cached KV for agent {agent} (looked for {})", path.display())]
    NotFound { agent: AgentKey, path: PathBuf },
    /// The model fingerprint cannot name a directory.
    #[error("model fingerprint {fingerprint:?} is unusable: {reason}")]
    InvalidFingerprint { fingerprint: String, reason: String },
    /// `save` was handed a record that contradicts itself or this store.
    #[error("refusing to save agent {agent}: {reason}")]
    InvalidRecord { agent: AgentKey, reason: String },
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    /// Whether the file this error is about should be moved to quarantine.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Self::Corrupt { .. })
    }
}
