//! Anthropic's error envelope: `{"type":"error","error":{"type","message"}}`.
//!
//! Anthropic has no `param` field, so the message names the field instead
//! (`max_tokens: field required`), as Anthropic's own messages do.

use serde::Serialize;

use crate::error::{ApiError, ErrorClass};

#[derive(Debug, Serialize)]
pub struct ErrorEnvelope {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub error: ErrorBody,
}

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: String,
}

/// Anthropic's `error.type` for each class of failure.
pub fn error_type(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::InvalidRequest => "invalid_request_error",
        ErrorClass::Authentication => "authentication_error",
        ErrorClass::Permission => "permission_error",
        ErrorClass::NotFound => "not_found_error",
        ErrorClass::TooLarge => "request_too_large",
        ErrorClass::RateLimited => "rate_limit_error",
        ErrorClass::Overloaded => "overloaded_error",
        ErrorClass::Internal => "api_error",
    }
}

/// The envelope `err` is sent as on an Anthropic route.
pub fn envelope(err: &ApiError) -> ErrorEnvelope {
    ErrorEnvelope {
        kind: "error",
        error: ErrorBody {
            kind: error_type(err.class()),
            message: message(err),
        },
    }
}

/// The message, prefixed with the `param` unless it already names it.
fn message(err: &ApiError) -> String {
    match err.param.as_deref() {
        Some(param) if !err.message.contains(param) => format!("{param}: {}", err.message),
        _ => err.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use serde_json::json;

    #[test]
    fn has_anthropics_shape_and_names_the_param() {
        let err = ApiError::invalid_request("must be a string").with_param("model");
        assert_eq!(
            serde_json::to_value(envelope(&err)).unwrap(),
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "model: must be a string"}})
        );
        let named =
            ApiError::invalid_request("max_tokens: field required").with_param("max_tokens");
        assert_eq!(envelope(&named).error.message, "max_tokens: field required");
    }

    #[test]
    fn every_status_maps_to_anthropics_type() {
        let with = |status: StatusCode| ApiError {
            status,
            ..ApiError::invalid_request("x")
        };
        let cases = [
            (StatusCode::BAD_REQUEST, "invalid_request_error"),
            (StatusCode::UNAUTHORIZED, "authentication_error"),
            (StatusCode::FORBIDDEN, "permission_error"),
            (StatusCode::NOT_FOUND, "not_found_error"),
            (StatusCode::METHOD_NOT_ALLOWED, "invalid_request_error"),
            (StatusCode::PAYLOAD_TOO_LARGE, "request_too_large"),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error"),
            (StatusCode::INTERNAL_SERVER_ERROR, "api_error"),
            (StatusCode::SERVICE_UNAVAILABLE, "overloaded_error"),
        ];
        for (status, kind) in cases {
            assert_eq!(envelope(&with(status)).error.kind, kind, "{status}");
        }
        let queue = with(StatusCode::TOO_MANY_REQUESTS).with_code(crate::error::QUEUE_FULL);
        assert_eq!(envelope(&queue).error.kind, "overloaded_error");
    }
}
