//! The outermost middleware: every error leaves in its API family's envelope.
//!
//! Handlers, extractors, fallbacks and middleware all answer errors as
//! [`ApiError`], which renders the OpenAI envelope and also travels in the
//! response's extensions. Here, once everything inside has run, an error
//! on an Anthropic path (`/v1/messages*`) is re-rendered in Anthropic's
//! envelope. An error response that carries no `ApiError` (a layer that
//! answered on its own) is turned into one first, so no path ever leaks a
//! bare or foreign error body. It must stay the outermost layer to see the
//! errors of every other.

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::anthropic;
use crate::error::ApiError;

/// Largest bare error body read to reuse as the message.
const BARE_BODY_MAX: usize = 4096;

/// Which envelope a path's errors use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    OpenAi,
    Anthropic,
}

impl Family {
    fn of(path: &str) -> Self {
        if anthropic::owns(path) {
            Self::Anthropic
        } else {
            Self::OpenAi
        }
    }
}

/// The middleware (`axum::middleware::from_fn(error_envelope::render)`).
pub async fn render(request: Request, next: Next) -> Response {
    let family = Family::of(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    let carried = response.extensions().get::<ApiError>().cloned();
    match (carried, family) {
        (Some(_), Family::OpenAi) => response,
        (Some(err), Family::Anthropic) => rerender(err, family, response.headers()),
        (None, _) if !(status.is_client_error() || status.is_server_error()) => response,
        (None, Family::OpenAi) if is_json(response.headers()) => response,
        (None, _) => {
            let headers = response.headers().clone();
            let err = from_bare(response).await;
            rerender(err, family, &headers)
        }
    }
}

/// `err` in `family`'s envelope, keeping the headers it was answered with
/// (`Retry-After`, `Allow`, ...) but not those describing the old body.
fn rerender(err: ApiError, family: Family, headers: &HeaderMap) -> Response {
    let mut response = match family {
        Family::OpenAi => err.into_response(),
        Family::Anthropic => {
            let body = Json(anthropic::envelope::envelope(&err));
            let mut response = (err.status, body).into_response();
            response.extensions_mut().insert(err);
            response
        }
    };
    for (name, value) in headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// An `ApiError` for an error response some layer produced on its own: its
/// status, and its body as the message when that is short text.
async fn from_bare(response: Response) -> ApiError {
    let status = response.status();
    let text = match to_bytes(response.into_body(), BARE_BODY_MAX).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned()
    } else {
        text
    };
    ApiError::from_status(status, message)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    /// What a layer that answers on its own might send: no `ApiError`.
    fn bare(status: StatusCode, text: &'static str) -> Response {
        (status, Body::from(text)).into_response()
    }

    async fn call(router: Router, path: &str) -> (StatusCode, HeaderMap, serde_json::Value) {
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = to_bytes(body, 1 << 16).await.unwrap();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    fn router() -> Router {
        let limited = || async {
            ApiError {
                retry_after: Some(3),
                ..ApiError::from_status(StatusCode::TOO_MANY_REQUESTS, "slow down")
            }
        };
        Router::new()
            .route("/v1/messages/limited", get(limited))
            .route("/v1/chat/limited", get(limited))
            .route(
                "/v1/messages/bare",
                get(|| async { bare(StatusCode::REQUEST_TIMEOUT, "timed out") }),
            )
            .route(
                "/v1/chat/bare",
                get(|| async { bare(StatusCode::REQUEST_TIMEOUT, "") }),
            )
            .layer(axum::middleware::from_fn(render))
    }

    #[tokio::test]
    async fn anthropic_paths_get_anthropics_envelope_with_headers_kept() {
        let (status, headers, body) = call(router(), "/v1/messages/limited").await;
        assert_eq!(status, 429);
        assert_eq!(headers[header::RETRY_AFTER], "3");
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(body["error"]["message"], "slow down");
    }

    #[tokio::test]
    async fn other_paths_keep_the_openai_envelope() {
        let (status, headers, body) = call(router(), "/v1/chat/limited").await;
        assert_eq!(status, 429);
        assert_eq!(headers[header::RETRY_AFTER], "3");
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert!(body.get("type").is_none(), "{body}");
    }

    #[tokio::test]
    async fn bare_errors_are_wrapped_in_the_family_envelope() {
        let (status, _, body) = call(router(), "/v1/messages/bare").await;
        assert_eq!(status, 408);
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["message"], "timed out");
        let (status, _, body) = call(router(), "/v1/chat/bare").await;
        assert_eq!(status, 408);
        assert_eq!(body["error"]["message"], "Request Timeout");
    }

    #[test]
    fn only_the_messages_routes_are_anthropic() {
        assert_eq!(Family::of("/v1/messages"), Family::Anthropic);
        assert_eq!(Family::of("/v1/messages/count_tokens"), Family::Anthropic);
        assert_eq!(Family::of("/v1/messagesx"), Family::OpenAi);
        assert_eq!(Family::of("/v1/chat/completions"), Family::OpenAi);
    }
}
