//! The route table and the middleware around it.

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use tower_http::trace::{DefaultMakeSpan, DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::ApiError;
use crate::state::{RouterState, SharedState};
use crate::telemetry::{http, prometheus};
use crate::{admin, agents, anthropic, error_envelope, gateway, health, models, openai, openapi};

/// Every route over one engine that never changes (no hot swap).
pub fn build(state: SharedState) -> Router {
    build_with(RouterState::new(state))
}

/// Every route, with JSON 404/405 answers, the body limit, the gateway
/// (keys, rate limits, swap gate), request metrics and tracing, and each
/// API family's error envelope.
pub fn build_with(state: RouterState) -> Router {
    let body_limit = state.current().max_body_bytes;
    prometheus::record_static(&state.current());
    Router::new()
        .route("/v1/chat/completions", post(openai::chat::completions))
        .route("/v1/messages", post(anthropic::messages::create))
        .route(
            "/v1/messages/count_tokens",
            post(anthropic::count_tokens::count),
        )
        .route("/v1/models", get(models::list))
        .route("/v1/models/{id}", get(models::retrieve))
        .route("/v1/agents", get(agents::list))
        .route(
            "/v1/agents/{id}",
            get(agents::retrieve).delete(agents::delete),
        )
        .route("/v1/agents/{id}/evict", post(agents::evict))
        .route("/health/live", get(health::live))
        .route("/metrics", get(prometheus::scrape))
        .merge(admin::routes())
        .route("/openapi.json", get(openapi::document))
        // Applies to the routes above, so it must follow them.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        // `ApiJson` enforces the limit itself; this covers axum's own body
        // extractors should a route ever use one.
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gateway::admit,
        ))
        .layer(axum::middleware::from_fn(http::track))
        .layer(trace_layer())
        // Layers added after this one wrap it and would answer errors it never
        // sees, in the wrong envelope: add new layers ABOVE this line,
        // returning `ApiError`. It must stay the outermost.
        .layer(middleware::from_fn(error_envelope::render))
        .with_state(state)
}

/// Method, path, status and latency at debug level; never headers or
/// bodies, which carry prompts and credentials.
fn trace_layer(
) -> TraceLayer<tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>>
{
    TraceLayer::new_for_http()
        .make_span_with(DefaultMakeSpan::new().level(Level::DEBUG))
        .on_request(DefaultOnRequest::new().level(Level::DEBUG))
        .on_response(DefaultOnResponse::new().level(Level::DEBUG))
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(method.as_str(), uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}
