//! The session storage port: sessions and their transcripts kept durably,
//! each one its tenant's (another tenant's session is indistinguishable
//! from a missing one).

use crate::TenantId;

use super::model::Session;

/// A session and the tenant it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSession {
    pub tenant: TenantId,
    pub session: Session,
}

/// A store that failed to read or write.
#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct SessionStoreError(pub String);

/// Durable storage of sessions. Calls block on I/O: adapters call them off
/// the async runtime's workers.
pub trait SessionStore: Send + Sync {
    /// Store the session, replacing its earlier state (durable on return).
    fn put_session(&self, session: &StoredSession) -> Result<(), SessionStoreError>;
    /// Session `id` of `tenant`; `None` if missing or another tenant's.
    fn get_session(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<StoredSession>, SessionStoreError>;
    /// Delete session `id` of `tenant`; false if there was none.
    fn delete_session(&self, tenant: &TenantId, id: &str) -> Result<bool, SessionStoreError>;
}
