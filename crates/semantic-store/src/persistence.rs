//! The store as the engine's persistence port ([`AgentPersistence`]).
//!
//! Saves go to the background writer (the engine thread never waits on a
//! disk); loads verify the file and turn every kind of bad file into a
//! miss: it is counted, moved to the quarantine folder, and the tokens it
//! held (when its header was readable) are reported so nothing crashes and
//! no wrong KV is ever used.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use semantic_domain::persistence::{AgentPersistence, AgentSnapshot, LoadResult, StoredAgent};
use semantic_domain::AgentKey;

use crate::{
    AgentRecord, AgentRecordMeta, Compat, DiskStore, LoadOutcome, PersistWriter, StoreError,
};

/// [`AgentPersistence`] over a [`DiskStore`] and its background writer.
pub struct StorePersistence {
    store: Arc<DiskStore>,
    writer: PersistWriter,
    compat: Compat,
}

impl StorePersistence {
    /// Persist under `store` (one model's directory); files must match `compat`.
    pub fn new(store: Arc<DiskStore>, compat: Compat) -> std::io::Result<Self> {
        let writer = PersistWriter::start(store.clone())?;
        Ok(Self {
            store,
            writer,
            compat,
        })
    }

    pub fn store(&self) -> &DiskStore {
        &self.store
    }

    pub fn writer(&self) -> &PersistWriter {
        &self.writer
    }

    /// Files found unusable (corrupt, truncated, foreign) and quarantined
    /// since start, at indexing or at load.
    pub fn unusable_files(&self) -> u64 {
        self.store.quarantined_count()
    }

    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// Count a bad file and move it aside.
    fn reject(&self, agent: &AgentKey, reason: String, tokens: Option<Vec<i32>>) -> LoadResult {
        let path = self.store.path_for(agent);
        match self.store.quarantine(&path, &reason) {
            Ok(to) => {
                tracing::warn!(%agent, %reason, quarantined = %to.display(), "agent file unusable")
            }
            Err(e) => {
                tracing::warn!(%agent, %reason, error = %e, "agent file unusable; quarantine failed")
            }
        }
        LoadResult::Unusable { reason, tokens }
    }
}

impl AgentPersistence for StorePersistence {
    fn save(&self, snapshot: AgentSnapshot) {
        let meta = AgentRecordMeta {
            agent: snapshot.agent,
            model_fingerprint: self.compat.model_fingerprint.clone(),
            engine_build: self.compat.engine_build.clone(),
            kv_type: self.compat.kv_type,
            kv_bytes: snapshot.kv_state.len() as u64,
            tokens: snapshot.tokens,
            created_unix_ms: Self::now_ms(),
        };
        self.writer.submit(AgentRecord {
            meta,
            kv_state: snapshot.kv_state,
        });
    }

    fn load(&self, agent: &AgentKey) -> LoadResult {
        // A queued write for this agent must land first, or we would read
        // an older turn (or nothing).
        self.writer.flush();
        let started = std::time::Instant::now();
        let loaded = self.store.load(agent, &self.compat);
        if !matches!(loaded, Err(StoreError::NotFound { .. })) {
            crate::telemetry::loaded(started.elapsed());
        }
        match loaded {
            Ok(LoadOutcome::Usable(record)) => LoadResult::Usable(AgentSnapshot {
                agent: record.meta.agent,
                tokens: record.meta.tokens,
                kv_state: record.kv_state,
            }),
            Ok(LoadOutcome::Mismatch { meta, reason }) => {
                self.reject(agent, reason, Some(meta.tokens))
            }
            Err(StoreError::NotFound { .. }) => LoadResult::Missing,
            Err(e @ StoreError::Unsupported { .. }) => LoadResult::Unusable {
                reason: e.to_string(),
                tokens: None,
            },
            Err(e) if e.is_corrupt() => self.reject(agent, e.to_string(), None),
            Err(e) => LoadResult::Unusable {
                reason: e.to_string(),
                tokens: None,
            },
        }
    }

    fn index(&self) -> Vec<StoredAgent> {
        match self.store.index() {
            // Incompatible files are listed too: loading one quarantines it
            // and counts it, instead of leaving it to be silently overwritten.
            Ok(metas) => metas
                .into_iter()
                .map(|m| StoredAgent {
                    agent: m.agent,
                    tokens: m.tokens,
                    kv_bytes: m.kv_bytes,
                    written_unix_ms: m.created_unix_ms,
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot index the disk tier; starting without it");
                Vec::new()
            }
        }
    }

    fn remove(&self, agent: &AgentKey) -> bool {
        self.writer.cancel(agent);
        self.store.remove(agent).unwrap_or_else(|e| {
            tracing::warn!(%agent, error = %e, "cannot remove agent file");
            false
        })
    }

    fn flush(&self) {
        self.writer.flush();
    }
}
