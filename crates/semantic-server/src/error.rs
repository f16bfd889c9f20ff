//! The API error type and its wire envelope.
//!
//! Every failure a client can see, including the framework's own (unknown
//! route, wrong method, oversized or malformed body), leaves the server as
//! the OpenAI error envelope `{"error":{"message","type","param","code"}}`,
//! so SDKs surface our message instead of a generic parse failure.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use semantic_domain::InvalidSampling;
use semantic_engine::EngineError;
use serde::Serialize;

/// The OpenAI error `type` strings we emit. OpenAI itself uses
/// `invalid_request_error` for 404s and 405s too, so there is no separate kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The client sent something we cannot or will not process.
    InvalidRequestError,
    /// Too much load right now; retry later.
    RateLimitError,
    /// Our fault, or the engine is unavailable.
    ServerError,
}

/// An error answered to the client: status, envelope fields, optional `Retry-After`.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: ErrorKind,
    pub message: String,
    /// The request field at fault (`messages[0].content`, `temperature`, ...).
    pub param: Option<String>,
    /// A stable machine-readable code (`queue_full`, `context_length_exceeded`, ...).
    pub code: Option<&'static str>,
    /// Seconds the client should wait before retrying.
    pub retry_after: Option<u32>,
}

/// The `{"error": {...}}` body, shared by HTTP responses and mid-stream SSE errors.
#[derive(Debug, Serialize)]
pub struct ErrorEnvelope<'a> {
    pub error: ErrorBody<'a>,
}

#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub message: &'a str,
    #[serde(rename = "type")]
    pub kind: ErrorKind,
    pub param: Option<&'a str>,
    pub code: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// 400 `invalid_request_error`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequestError,
            message,
        )
    }

    /// 500 `server_error`: something broke on our side.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::ServerError,
            message,
        )
    }

    /// 404 for a path no route serves (OpenAI's type and code for it).
    pub fn not_found(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorKind::InvalidRequestError,
            format!("no route for {method} {path}"),
        )
        .with_code("unknown_url")
    }

    /// 405 for a known path used with the wrong method (axum adds `Allow`).
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::InvalidRequestError,
            format!("method {method} is not allowed on {path}"),
        )
    }

    /// 413 for a body over the configured limit.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::InvalidRequestError,
            format!("the request body exceeds the server's limit of {limit} bytes"),
        )
        .with_code("request_too_large")
    }

    /// 415 for a body that is not declared as JSON.
    pub fn unsupported_media_type(found: Option<&str>) -> Self {
        let found = found.map_or_else(|| "no Content-Type".to_owned(), |f| format!("{f:?}"));
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::InvalidRequestError,
            format!("expected Content-Type: application/json, got {found}"),
        )
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The envelope this error is sent as.
    pub fn envelope(&self) -> ErrorEnvelope<'_> {
        ErrorEnvelope {
            error: ErrorBody {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, error = %self.message, "request failed");
        } else {
            // Not the message: serde quotes the offending value, which may be prompt text.
            tracing::debug!(status = %self.status, param = ?self.param, code = ?self.code, "request rejected");
        }
        let mut response = (self.status, Json(self.envelope())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// How the client named the token limit, so errors point at the field it sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MaxTokensField {
    #[default]
    MaxTokens,
    MaxCompletionTokens,
}

impl MaxTokensField {
    pub fn name(self) -> &'static str {
        match self {
            Self::MaxTokens => "max_tokens",
            Self::MaxCompletionTokens => "max_completion_tokens",
        }
    }
}

/// Map an engine refusal to the status a client should see.
///
/// The match is exhaustive on purpose: a new engine error must be classified
/// here, never fall into a catch-all 500.
pub fn from_engine(err: EngineError, max_tokens: MaxTokensField) -> ApiError {
    let message = err.to_string();
    match err {
        EngineError::EmptyPrompt => ApiError::invalid_request(message).with_param("messages"),
        EngineError::PromptTooLong { .. } => ApiError::invalid_request(message)
            .with_param("messages")
            .with_code("context_length_exceeded"),
        EngineError::MaxTokensTooLarge { .. } => ApiError::invalid_request(message)
            .with_param(max_tokens.name())
            .with_code("context_length_exceeded"),
        EngineError::InvalidSampling(bad) => {
            ApiError::invalid_request(message).with_param(sampling_param(&bad, max_tokens))
        }
        EngineError::InvalidToken(_) => ApiError::invalid_request(message).with_param("messages"),
        EngineError::Template(_) => ApiError::invalid_request(message).with_param("messages"),
        // Handlers convert schemas and check grammars themselves (see
        // `tool_use`), naming the field; these arms are the safety net.
        EngineError::InvalidSchema(_) | EngineError::InvalidGrammar(_) => {
            ApiError::invalid_request(message).with_param("response_format")
        }
        EngineError::QueueFull { .. } => ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorKind::RateLimitError,
                message,
            )
            .with_code("queue_full")
        },
        EngineError::ShuttingDown | EngineError::Stopped => ApiError {
            retry_after: Some(5),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::ServerError,
                message,
            )
            .with_code("engine_unavailable")
        },
        // Start-up errors; the engine never returns them for a request.
        EngineError::ModelNotFound(_)
        | EngineError::ModelLoad { .. }
        | EngineError::ContextCreate(_)
        | EngineError::InvalidConfig { .. } => ApiError::internal(message),
    }
}

fn sampling_param(bad: &InvalidSampling, max_tokens: MaxTokensField) -> &'static str {
    match bad {
        InvalidSampling::Temperature(_) => "temperature",
        InvalidSampling::TopP(_) => "top_p",
        InvalidSampling::ZeroMaxTokens => max_tokens.name(),
        InvalidSampling::TooManyStops(_)
        | InvalidSampling::EmptyStop
        | InvalidSampling::StopTooLong(_) => "stop",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_full_is_429_with_retry_after() {
        let err = from_engine(
            EngineError::QueueFull { capacity: 4 },
            MaxTokensField::default(),
        );
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.kind, ErrorKind::RateLimitError);
        assert_eq!(err.code, Some("queue_full"));
        let response = err.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn shutdown_is_503_and_client_errors_are_400() {
        let down = from_engine(EngineError::ShuttingDown, MaxTokensField::default());
        assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(down.retry_after.is_some());
        let zero = from_engine(
            EngineError::InvalidSampling(InvalidSampling::ZeroMaxTokens),
            MaxTokensField::MaxCompletionTokens,
        );
        assert_eq!(zero.status, StatusCode::BAD_REQUEST);
        assert_eq!(zero.param.as_deref(), Some("max_completion_tokens"));
    }

    #[test]
    fn envelope_has_the_openai_shape() {
        let err = ApiError::invalid_request("bad").with_param("model");
        let v = serde_json::to_value(err.envelope()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"message": "bad", "type": "invalid_request_error", "param": "model", "code": null}})
        );
    }
}
