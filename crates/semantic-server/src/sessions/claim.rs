//! One request at a time per session: a turn reads the transcript, runs,
//! and writes it back, so two at once would lose one of them. A second
//! request while one runs is a 409 `session_busy`, not a wait: a round
//! can run for minutes, longer than a client should hang unaware.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::StatusCode;
use semantic_domain::TenantId;

use crate::error::ApiError;

/// The sessions that have a request running.
#[derive(Debug, Default)]
pub struct SessionClaims {
    busy: Mutex<HashSet<(TenantId, String)>>,
}

/// A session held by one request; released when dropped (also when the
/// client goes away and the request's future or stream is dropped).
#[derive(Debug)]
pub struct Claim {
    claims: Arc<SessionClaims>,
    key: (TenantId, String),
}

impl SessionClaims {
    /// Hold session `id` of `tenant`, or a 409 if a request holds it.
    pub fn claim(self: &Arc<Self>, tenant: &TenantId, id: &str) -> Result<Claim, ApiError> {
        let key = (tenant.clone(), id.to_owned());
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        if !busy.insert(key.clone()) {
            return Err(ApiError::from_status(
                StatusCode::CONFLICT,
                format!("session {id} is running another request; retry when it finishes"),
            )
            .with_code("session_busy"));
        }
        Ok(Claim {
            claims: self.clone(),
            key,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut busy = self
            .claims
            .busy
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        busy.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_session_is_busy_until_released() {
        let claims = Arc::new(SessionClaims::default());
        let t = TenantId::open();
        let first = claims.claim(&t, "sess_a").unwrap();
        assert_eq!(claims.claim(&t, "sess_a").unwrap_err().status, 409);
        assert!(claims.claim(&t, "sess_b").is_ok(), "another session");
        drop(first);
        assert!(claims.claim(&t, "sess_a").is_ok());
    }
}
