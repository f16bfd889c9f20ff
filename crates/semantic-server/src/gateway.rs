//! The gateway: what every request passes before its handler runs — the
//! key check (which settles the caller's tenant), the per-key rate limit,
//! and the admission gate that holds new requests while the model is being
//! swapped.
//!
//! One middleware ([`admit`]) applies them in that order, classifying the
//! request by path ([`Access`]), so a route added anywhere is covered:
//! only `/health/*`, `/metrics` and `/openapi.json` skip all of it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use semantic_domain::responses::{ResponseBudget, ResponseStore};
use semantic_domain::sessions::SessionStore;

use crate::auth::{Access, AuthConfig};
use crate::limits::RequestLimits;
use crate::model_alias::ModelAliases;
use crate::rate_limit::RateLimits;
use crate::sessions::claim::SessionClaims;
use crate::state::RouterState;
use crate::swap::{EngineFactory, SwapControl};
use crate::tenant::CallerTenant;

/// Settings and live state that outlive any one engine (they carry over a
/// model swap). There is no default (open) gateway: the server builds one
/// from its configuration, and [`crate::state::RouterState`] owns it.
pub struct Gateway {
    pub auth: AuthConfig,
    pub rate_limits: RateLimits,
    pub limits: RequestLimits,
    /// The model names clients may use besides the model's own.
    pub model_aliases: ModelAliases,
    /// How often a stream with nothing to send sends its family's idle
    /// event (Anthropic's `ping`).
    pub stream_ping_interval: Duration,
    pub swap: SwapControl,
    /// How to start an engine for another model; `None` disables hot swap.
    pub factory: Option<Arc<dyn EngineFactory>>,
    /// Stored responses (`/v1/responses`), of every model and tenant.
    pub responses: Arc<dyn ResponseStore>,
    /// Multi-agent sessions (`/v1/sessions`), of every model and tenant.
    pub sessions: Arc<dyn SessionStore>,
    /// The sessions a request is running on (one at a time each).
    pub session_claims: Arc<SessionClaims>,
}

/// A response store in memory, for a server given none (tests, a server
/// without a cache directory): the same rules, nothing survives the process.
pub fn memory_responses() -> Arc<dyn ResponseStore> {
    match semantic_store::ResponseDb::in_memory(ResponseBudget::default()) {
        Ok(db) => Arc::new(db),
        // An in-memory database has no I/O to fail; if it ever does, it is a bug.
        Err(e) => panic!("cannot create an in-memory response store: {e}"),
    }
}

/// A session store in memory, for a server given none.
pub fn memory_sessions() -> Arc<dyn SessionStore> {
    match semantic_store::ResponseDb::in_memory(ResponseBudget::default()) {
        Ok(db) => Arc::new(db),
        // As for `memory_responses`: no I/O to fail.
        Err(e) => panic!("cannot create an in-memory session store: {e}"),
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("auth", &self.auth)
            .field("rate_limits", &self.rate_limits)
            .field("limits", &self.limits)
            .field("model_aliases", &self.model_aliases)
            .field("stream_ping_interval", &self.stream_ping_interval)
            .field("hot_swap", &self.factory.is_some())
            .field("responses", &self.responses.stats())
            .finish()
    }
}

/// The middleware: authenticate, rate-limit, then admit (or hold during a
/// swap) every request that is not public. Errors are [`crate::ApiError`]
/// responses, so outer layers can re-render them per API family.
pub async fn admit(
    State(router): State<RouterState>,
    mut request: Request,
    next: Next,
) -> Response {
    let gateway = router.gateway();
    let access = Access::of_path(request.uri().path());
    let caller = match gateway.auth.authorize(access, request.headers()) {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    let tenant = CallerTenant(gateway.auth.tenant_of(caller));
    request.extensions_mut().insert(tenant);
    match access {
        Access::Public | Access::Admin => next.run(request).await,
        Access::Api => {
            if let Err(e) = gateway.rate_limits.check_key(caller) {
                return e.into_response();
            }
            // Counted until the handler answers; a swap waits for these.
            let _in_flight = gateway.swap.admit().await;
            next.run(request).await
        }
    }
}
