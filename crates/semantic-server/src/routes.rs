//! The route table and the middleware around it.

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::state::RouterState;
use crate::telemetry::{http, prometheus};
use crate::{
    admin, agents, anthropic, error_envelope, gateway, models, openai, openapi, responses, sessions,
};

/// Every route, with JSON 404/405 answers, the body limit, the gateway
/// (keys, rate limits, swap gate), request metrics and tracing, and each
/// API family's error envelope.
pub fn build_with(state: RouterState) -> Router {
    let body_limit = state.gateway().limits.max_body_bytes;
    prometheus::record_static(&state.current());
    Router::new()
        .route("/v1/chat/completions", post(openai::chat::completions))
        .route("/v1/messages", post(anthropic::messages::create))
        .route(
            "/v1/messages/count_tokens",
            post(anthropic::count_tokens::count),
        )
        .route("/v1/responses", post(responses::create::create))
        .route(
            "/v1/responses/{id}",
            get(responses::stored::retrieve).delete(responses::stored::delete),
        )
        .route(
            "/v1/responses/{id}/input_items",
            get(responses::stored::input_items),
        )
        .route("/v1/sessions", post(sessions::handlers::create))
        .route(
            "/v1/sessions/{id}",
            get(sessions::handlers::retrieve).delete(sessions::handlers::delete),
        )
        .route("/v1/sessions/{id}/turn", post(sessions::handlers::turn))
        .route("/v1/sessions/{id}/round", post(sessions::handlers::round))
        .route(
            "/v1/sessions/{id}/messages",
            post(sessions::handlers::messages),
        )
        .route("/v1/models", get(models::list))
        .route("/v1/models/{id}", get(models::retrieve))
        .route("/v1/agents", get(agents::list))
        .route(
            "/v1/agents/{id}",
            get(agents::retrieve).delete(agents::delete),
        )
        .route("/v1/agents/{id}/evict", post(agents::evict))
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
        // Layers added after this one wrap it and would answer errors it never
        // sees, in the wrong envelope: add new layers ABOVE this line,
        // returning `ApiError`. It must stay the outermost of the API router
        // (probes, request ids and request logging live in `front`).
        .layer(middleware::from_fn(error_envelope::render))
        .with_state(state)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(method.as_str(), uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}
