//! The tenant a request acts for, as the gateway settled it from its key.
//!
//! The gateway ([`crate::gateway::admit`]) puts a [`CallerTenant`] on every
//! request it authorizes; handlers take it as an extractor, so every scoped
//! operation (generation, `/v1/agents`) names the tenant from one place. A
//! request that did not pass the gateway has no tenant and is refused:
//! scoping fails closed.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use semantic_domain::{AgentId, AgentKey, TenantId};

use crate::error::ApiError;

/// The tenant of the caller's key (the open tenant when keys are off).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerTenant(pub TenantId);

impl CallerTenant {
    /// The full key of `agent` as this caller names it.
    pub fn agent(&self, agent: AgentId) -> AgentKey {
        AgentKey::new(self.0.clone(), agent)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CallerTenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CallerTenant>()
            .cloned()
            .ok_or_else(|| {
                ApiError::forbidden("the request carries no tenant; it did not pass the gateway")
            })
    }
}
