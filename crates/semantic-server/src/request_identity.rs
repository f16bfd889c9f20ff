//! `X-Request-ID` and `X-Correlation-ID` on every request and response.
//!
//! A request keeps the id its client sent (so a client's logs and ours can
//! be joined) or gets a fresh UUID; the correlation id ties together the
//! requests of one larger operation and defaults to the request id. Both
//! are echoed on every response, rejections included, and recorded on the
//! request's span, so every log line of the request carries them.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

/// Longest client-supplied id we keep; longer ones are replaced, so a
/// client cannot bloat every log line.
const MAX_ID_LEN: usize = 128;

/// Middleware: settle both ids on the request, echo them on the response.
pub async fn identify(mut request: Request, next: Next) -> Response {
    let request_id = usable(request.headers().get(&REQUEST_ID)).unwrap_or_else(fresh_id);
    let correlation_id =
        usable(request.headers().get(&CORRELATION_ID)).unwrap_or_else(|| request_id.clone());
    let headers = request.headers_mut();
    headers.insert(REQUEST_ID, request_id.clone());
    headers.insert(CORRELATION_ID, correlation_id.clone());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID, request_id);
    headers.insert(CORRELATION_ID, correlation_id);
    response
}

fn fresh_id() -> HeaderValue {
    let id = uuid::Uuid::new_v4().simple().to_string();
    // A hex string is always a valid header value; the fallback is unreachable.
    HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("unknown"))
}

/// A client id we are willing to echo and log: short, visible ASCII.
fn usable(value: Option<&HeaderValue>) -> Option<HeaderValue> {
    let value = value?;
    let text = value.to_str().ok()?;
    let fine =
        !text.is_empty() && text.len() <= MAX_ID_LEN && text.bytes().all(|b| b.is_ascii_graphic());
    fine.then(|| value.clone())
}

/// The id of a request that went through [`identify`] ("" otherwise).
pub fn of(request: &Request, name: &HeaderName) -> String {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_visible_ascii_ids_are_kept() {
        let ok = HeaderValue::from_static("abc-123_X.y");
        assert_eq!(usable(Some(&ok)), Some(ok));
        assert_eq!(usable(Some(&HeaderValue::from_static("has space"))), None);
        assert_eq!(usable(Some(&HeaderValue::from_static(""))), None);
        let long = HeaderValue::from_str(&"x".repeat(MAX_ID_LEN + 1)).unwrap();
        assert_eq!(usable(Some(&long)), None);
        assert_eq!(usable(None), None);
    }
}
