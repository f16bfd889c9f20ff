//! The outermost router: probes, request identity and request logging
//! around everything, then the API behind [`lifecycle::forward`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{Method, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tower_http::trace::TraceLayer;
use tracing::{Level, Span};

use crate::error::ApiError;
use crate::lifecycle::{self, Lifecycle};
use crate::{health, request_identity};

/// Probes answer here directly (no key, no rate limit, even while
/// starting or draining); everything else goes through `forward`.
pub fn build(lifecycle: Arc<Lifecycle>) -> Router {
    Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/health/startup", get(health::startup))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(lifecycle::forward)
        .with_state(lifecycle)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(log_response)
                // `log_response` already reports every status; a 503 probe
                // while draining is not an error worth a line of its own.
                .on_failure(()),
        )
        // Outermost, so even a rejection by any inner layer carries the ids.
        .layer(axum::middleware::from_fn(request_identity::identify))
}

/// Paths polled by machines every few seconds: logged at debug only.
fn is_quiet(path: &str) -> bool {
    path.starts_with("/health/") || path == "/metrics"
}

/// One span per request with its ids; never headers or bodies, which carry
/// prompts and credentials.
fn request_span(request: &Request) -> Span {
    let path = request.uri().path();
    let method = request.method().as_str();
    let request_id = request_identity::of(request, &request_identity::REQUEST_ID);
    let correlation_id = request_identity::of(request, &request_identity::CORRELATION_ID);
    if is_quiet(path) {
        tracing::debug_span!("request", method, path, request_id, correlation_id)
    } else {
        tracing::info_span!("request", method, path, request_id, correlation_id)
    }
}

/// Status and latency, at the level the span was created with.
fn log_response(response: &Response, latency: Duration, span: &Span) {
    let status = response.status().as_u16();
    let ms = latency.as_secs_f64() * 1e3;
    let loud = span
        .metadata()
        .is_some_and(|meta| *meta.level() == Level::INFO);
    if loud {
        tracing::info!(status, latency_ms = ms, "request finished");
    } else {
        tracing::debug!(status, latency_ms = ms, "request finished");
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}
