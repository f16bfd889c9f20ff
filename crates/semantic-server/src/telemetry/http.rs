//! Per-request middleware: the `http request` span and request metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::Extractor;
use tracing::field::Empty;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The label of requests no route matched: raw paths would let any client
/// mint label values without bound.
pub const UNMATCHED: &str = "unmatched";

/// Every route template this middleware counts (the API router's routes;
/// the probes live outside it, in `front`). A test holds it equal to the
/// documented paths of `openapi.json`, which another test holds to the
/// router.
pub const ROUTES: &[&str] = &[
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/responses",
    "/v1/responses/{id}",
    "/v1/responses/{id}/input_items",
    "/v1/sessions",
    "/v1/sessions/{id}",
    "/v1/sessions/{id}/turn",
    "/v1/sessions/{id}/round",
    "/v1/sessions/{id}/messages",
    "/v1/models",
    "/v1/models/{id}",
    "/v1/agents",
    "/v1/agents/{id}",
    "/v1/agents/{id}/evict",
    "/admin/models/current",
    "/admin/models/load",
    "/admin/caches",
    "/admin/agents",
    "/metrics",
    "/openapi.json",
];

/// The request series exist from start-up, for `rate()` and alerts on a
/// fresh server: per route template, the `200` counter at 0 and the
/// duration histogram with no observations (`unmatched`: `404`). Other
/// statuses are unbounded in principle; each appears with its first
/// response.
pub fn register() {
    let series = ROUTES
        .iter()
        .map(|&route| (route, "200"))
        .chain([(UNMATCHED, "404")]);
    for (route, status) in series {
        metrics::counter!(REQUESTS, "route" => route, "status" => status).increment(0);
        let _ = metrics::histogram!(DURATION, "route" => route);
    }
}

const REQUESTS: &str = "semantic_requests_total";
const DURATION: &str = "semantic_request_duration_seconds";

/// Wrap one request: open its span (a child of the caller's `traceparent`,
/// if any), run it, and count it by route template and status.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let span = request_span(request.method().as_str(), &route, request.headers());
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!(
        REQUESTS,
        "route" => route.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(DURATION, "route" => route).record(elapsed);
    response
}

/// Debug level: invisible to the default log filter; the binary's
/// OpenTelemetry layer, when installed, takes this module's spans.
fn request_span(method: &str, route: &str, headers: &HeaderMap) -> tracing::Span {
    let span = tracing::debug_span!(
        "http request",
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        http.response.status_code = Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    if let Err(e) = span.set_parent(parent) {
        tracing::trace!(error = ?e, "cannot parent the request span");
    }
    span
}

/// HTTP headers as an OpenTelemetry propagation carrier.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every documented path but the probes (`front` answers those, outside
    /// this middleware) is a route registered at start-up, and no other.
    #[test]
    fn registered_routes_are_the_documented_ones() {
        let doc: serde_json::Value = serde_json::from_str(crate::openapi::DOCUMENT).unwrap();
        let mut documented: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|p| !p.starts_with("/health/"))
            .collect();
        let mut registered = ROUTES.to_vec();
        documented.sort_unstable();
        registered.sort_unstable();
        assert_eq!(registered, documented);
    }
}
