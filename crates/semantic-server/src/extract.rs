//! A JSON body extractor whose every rejection is our error envelope.
//!
//! axum's `Json` answers plain text on bad input; SDKs then report a useless
//! parse failure. [`ApiJson`] checks the media type, enforces the body limit
//! (itself, so it can drain an oversized body before answering 413) and
//! names the field at fault (`param`) using `serde_path_to_error`.

use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{header, HeaderMap};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::ApiError;
use crate::state::SharedState;

/// A request body deserialized from JSON, or an [`ApiError`] naming what was wrong.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// Generic over the router state so it works under the swappable
/// [`crate::state::RouterState`] as well as a plain [`SharedState`].
impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    SharedState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        check_content_type(req.headers())?;
        let declared = declared_length(req.headers());
        let limit = SharedState::from_ref(state).gateway.limits.max_body_bytes;
        let body = read_body(req.into_body(), declared, limit).await?;
        parse(&body).map(ApiJson)
    }
}

/// Most bytes of an oversized body read and thrown away before answering 413.
const DRAIN_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Longest time spent draining an oversized body.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Read the whole body, refusing more than `limit` bytes.
///
/// An oversized body is drained (within [`DRAIN_MAX_BYTES`] and
/// [`DRAIN_TIMEOUT`]) before the 413 goes out: if we answered while the
/// client was still sending, hyper would close the connection with unread
/// data, the kernel would reset it, and the client would see a broken pipe
/// instead of our error.
async fn read_body(body: Body, declared: Option<u64>, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut chunks = body.into_data_stream();
    if declared.is_some_and(|len| len > limit as u64) {
        if declared.is_some_and(|len| len <= DRAIN_MAX_BYTES) {
            drain(chunks).await;
        }
        return Err(ApiError::payload_too_large(limit));
    }
    let mut buf = Vec::with_capacity(declared.map_or(0, |len| len as usize));
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::invalid_request(format!("failed to read the request body: {e}"))
        })?;
        if buf.len() + chunk.len() > limit {
            drain(chunks).await;
            return Err(ApiError::payload_too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Read and discard the rest of a body, within the drain limits.
async fn drain(mut chunks: BodyDataStream) {
    let discard = async {
        let mut seen = 0u64;
        while let Some(Ok(chunk)) = chunks.next().await {
            seen += chunk.len() as u64;
            if seen > DRAIN_MAX_BYTES {
                break;
            }
        }
    };
    // Past the limits we answer anyway; the client may then see a reset.
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, discard).await;
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Accept `application/json` and `application/*+json`, with any parameters.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::unsupported_media_type(None));
    };
    let raw = String::from_utf8_lossy(value.as_bytes());
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(Some(&raw)))
    }
}

/// Deserialize, turning serde's error into a message and a `param`.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(rejection)?;
    // Trailing garbage after the document is malformed JSON too.
    de.end().map_err(|e| {
        ApiError::invalid_request(format!("the request body is not valid JSON: {e}"))
    })?;
    Ok(value)
}

fn rejection(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::invalid_request(format!("the request body is not valid JSON: {inner}"))
        }
        Category::Data => {
            let param = param_of(&path, &inner.to_string());
            let message = match &param {
                Some(p) if path != "." => format!("invalid request body: {p}: {inner}"),
                _ => format!("invalid request body: {inner}"),
            };
            let error = ApiError::invalid_request(message);
            match param {
                Some(p) => error.with_param(p),
                None => error,
            }
        }
    }
}

/// The field at fault: the path, or for "missing field `x`" the path plus `x`.
fn param_of(path: &str, message: &str) -> Option<String> {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(field)) => Some(field.to_owned()),
        (_, Some(field)) => Some(format!("{path}.{field}")),
        (".", None) => None,
        (_, None) => Some(path.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Probe {
        model: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        temperature: f32,
    }

    fn error(body: &str) -> ApiError {
        match parse::<Probe>(body.as_bytes()) {
            Ok(p) => panic!("parsed {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(error("{}").param.as_deref(), Some("model"));
        let e = error(r#"{"model":"m","inner":{}}"#);
        assert_eq!(e.param.as_deref(), Some("inner.temperature"));
        let e = error(r#"{"model":"m","inner":{"temperature":"hot"}}"#);
        assert_eq!(e.param.as_deref(), Some("inner.temperature"));
        assert!(e.message.contains("invalid type"), "{}", e.message);
    }

    #[test]
    fn malformed_json_has_no_param() {
        for body in ["{", "{\"model\": }", "{\"model\":\"m\"} trailing", ""] {
            let e = error(body);
            assert_eq!(e.param, None, "{body}");
            assert!(
                e.message.contains("not valid JSON"),
                "{body}: {}",
                e.message
            );
        }
    }

    #[test]
    fn content_type_must_be_json() {
        let mut headers = HeaderMap::new();
        assert!(check_content_type(&headers).is_err());
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(check_content_type(&headers).is_err());
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(check_content_type(&headers).is_ok());
        headers.insert(
            header::CONTENT_TYPE,
            "application/vnd.api+json".parse().unwrap(),
        );
        assert!(check_content_type(&headers).is_ok());
    }
}
