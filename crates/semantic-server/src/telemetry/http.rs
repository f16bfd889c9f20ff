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
        "semantic_requests_total",
        "route" => route.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!("semantic_request_duration_seconds", "route" => route).record(elapsed);
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
