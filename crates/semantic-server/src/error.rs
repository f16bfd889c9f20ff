//! The API error type and its wire envelope.
//!
//! Every failure a client can see, including the framework's own (unknown
//! route, wrong method, oversized or malformed body), leaves the server as
//! an error envelope, so SDKs surface our message instead of a generic parse
//! failure. [`ApiError`] renders itself in the OpenAI envelope
//! `{"error":{"message","type","param","code"}}` and also rides along in the
//! response's extensions, so [`crate::error_envelope`] can re-render it in
//! another family's envelope (Anthropic's) by request path. [`ErrorClass`]
//! is the family-neutral classification those envelopes map from.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use semantic_domain::{InvalidSampling, SamplingParams};
use semantic_engine::EngineError;
use serde::Serialize;

/// The OpenAI error `type` strings we emit. OpenAI itself uses
/// `invalid_request_error` for 404s and 405s too, so there is no separate kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The client sent something we cannot or will not process.
    InvalidRequestError,
    /// No or an unknown API key (401).
    AuthenticationError,
    /// A valid key that may not do this (403).
    PermissionError,
    /// Too much load right now; retry later.
    RateLimitError,
    /// Our fault, or the engine is unavailable.
    ServerError,
}

/// The `code` of a request refused because the engine's queue is full.
pub const QUEUE_FULL: &str = "queue_full";

/// What went wrong, in no API family's vocabulary. Each envelope maps it to
/// its own `type` string (OpenAI's are coarser than Anthropic's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// 400-class: the client sent something we cannot or will not process.
    InvalidRequest,
    /// 401: missing or wrong credentials.
    Authentication,
    /// 403: valid credentials without the right to do this.
    Permission,
    /// 404: no such route or resource.
    NotFound,
    /// 413: the body is over the limit.
    TooLarge,
    /// 429: this client sent too much; slow down.
    RateLimited,
    /// 429/503: the server is too busy or unavailable right now; retry later.
    Overloaded,
    /// 500-class: our fault.
    Internal,
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

    /// An error with any status; the OpenAI `type` follows from it.
    pub fn from_status(status: StatusCode, message: impl Into<String>) -> Self {
        let kind = if status == StatusCode::TOO_MANY_REQUESTS {
            ErrorKind::RateLimitError
        } else if status.is_server_error() {
            ErrorKind::ServerError
        } else {
            ErrorKind::InvalidRequestError
        };
        Self::new(status, kind, message)
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

    /// 503 while the server drains for shutdown: the client should retry,
    /// here after a restart or on another instance.
    pub fn shutting_down() -> Self {
        Self::unavailable(
            "the server is shutting down and accepts no new requests; retry shortly",
            "shutting_down",
            5,
        )
    }

    /// 503 until the model is loaded and the disk tier indexed.
    pub fn starting() -> Self {
        Self::unavailable(
            "the server is starting (loading the model and indexing the cache); retry shortly",
            "starting",
            2,
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

    /// 401 `authentication_error`; the message says which headers carry a
    /// key and never repeats what was sent.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::AuthenticationError,
            message,
        )
        .with_code("invalid_api_key")
    }

    /// 403 `permission_error`: the caller is known but may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorKind::PermissionError, message)
            .with_code("permission_denied")
    }

    /// 429 `rate_limit_error` for a client over its request rate, with the
    /// seconds until its next request would pass (at least 1).
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u32) -> Self {
        Self {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorKind::RateLimitError,
                message,
            )
            .with_code("rate_limited")
        }
    }

    /// 503 `server_error` with `Retry-After`: the engine cannot take work
    /// now (shutting down, stopped, swapping models) but will again.
    pub fn unavailable(
        message: impl Into<String>,
        code: &'static str,
        retry_after_secs: u32,
    ) -> Self {
        Self {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::ServerError,
                message,
            )
            .with_code(code)
        }
    }

    /// A generation that failed after it was accepted: 503 when the engine
    /// is stopping (the client may retry elsewhere or later), 500 otherwise.
    pub fn generation_failed(message: impl Into<String>, engine_stopping: bool) -> Self {
        if engine_stopping {
            Self::unavailable(message, "engine_unavailable", 5)
        } else {
            Self::internal(message).with_code("generation_failed")
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The family-neutral class, from the status (and, for 429, whether the
    /// engine's queue was full rather than the client over its rate).
    pub fn class(&self) -> ErrorClass {
        match self.status {
            StatusCode::UNAUTHORIZED => ErrorClass::Authentication,
            StatusCode::FORBIDDEN => ErrorClass::Permission,
            StatusCode::NOT_FOUND => ErrorClass::NotFound,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorClass::TooLarge,
            StatusCode::TOO_MANY_REQUESTS if self.code == Some(QUEUE_FULL) => {
                ErrorClass::Overloaded
            }
            StatusCode::TOO_MANY_REQUESTS => ErrorClass::RateLimited,
            StatusCode::SERVICE_UNAVAILABLE => ErrorClass::Overloaded,
            s if s.is_server_error() => ErrorClass::Internal,
            _ => ErrorClass::InvalidRequest,
        }
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
        // For `error_envelope`, which re-renders it for other API families.
        response.extensions_mut().insert(self);
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

/// What a request family calls the fields engine errors point at, so the
/// `param` of an error names the field the client actually sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamNames {
    pub max_tokens: &'static str,
    pub stop: &'static str,
    /// The field holding the conversation (`messages`, `input`).
    pub prompt: &'static str,
}

impl ParamNames {
    /// Anthropic's Messages API.
    pub const ANTHROPIC: Self = Self {
        max_tokens: "max_tokens",
        stop: "stop_sequences",
        prompt: "messages",
    };

    /// OpenAI's Responses API.
    pub const RESPONSES: Self = Self {
        max_tokens: "max_output_tokens",
        stop: "stop",
        prompt: "input",
    };
}

impl From<MaxTokensField> for ParamNames {
    /// OpenAI: `stop`, and whichever token-limit field the client used.
    fn from(field: MaxTokensField) -> Self {
        Self {
            max_tokens: field.name(),
            stop: "stop",
            prompt: "messages",
        }
    }
}

/// Map an engine refusal to the status a client should see.
///
/// The match is exhaustive on purpose: a new engine error must be classified
/// here, never fall into a catch-all 500.
pub fn from_engine(err: EngineError, names: impl Into<ParamNames>) -> ApiError {
    let names = names.into();
    let message = err.to_string();
    match err {
        EngineError::EmptyPrompt => ApiError::invalid_request(message).with_param(names.prompt),
        EngineError::PromptTooLong { .. } => ApiError::invalid_request(message)
            .with_param(names.prompt)
            .with_code("context_length_exceeded"),
        // The message names the field as the client sent it, like `param`.
        EngineError::MaxTokensTooLarge { .. } => {
            ApiError::invalid_request(message.replacen("max_tokens", names.max_tokens, 1))
                .with_param(names.max_tokens)
                .with_code("context_length_exceeded")
        }
        EngineError::MaxTokensOverCap { .. } => {
            ApiError::invalid_request(message.replacen("max_tokens", names.max_tokens, 1))
                .with_param(names.max_tokens)
                .with_code("max_tokens_over_cap")
        }
        EngineError::InvalidSampling(bad) => {
            ApiError::invalid_request(message).with_param(sampling_param(&bad, names))
        }
        EngineError::InvalidToken(_) => ApiError::invalid_request(message).with_param(names.prompt),
        EngineError::Template(_) => ApiError::invalid_request(message).with_param(names.prompt),
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
            .with_code(QUEUE_FULL)
        },
        EngineError::Draining => ApiError::shutting_down(),
        EngineError::ShuttingDown | EngineError::Stopped => {
            ApiError::unavailable(message, "engine_unavailable", 5)
        }
        // Start-up errors; the engine never returns them for a request.
        EngineError::ModelNotFound(_)
        | EngineError::ModelLoad { .. }
        | EngineError::ContextCreate(_)
        | EngineError::InvalidConfig { .. } => ApiError::internal(message),
    }
}

/// Validate sampling parameters before any tokenization is spent, with the
/// error's `param` in the family's own field names.
pub fn check_sampling(
    params: &SamplingParams,
    names: impl Into<ParamNames>,
) -> Result<(), ApiError> {
    params
        .validate()
        .map_err(|e| from_engine(EngineError::InvalidSampling(e), names))
}

fn sampling_param(bad: &InvalidSampling, names: ParamNames) -> &'static str {
    match bad {
        InvalidSampling::Temperature(_) => "temperature",
        InvalidSampling::TopP(_) => "top_p",
        InvalidSampling::ZeroMaxTokens => names.max_tokens,
        InvalidSampling::TooManyStops(_)
        | InvalidSampling::EmptyStop
        | InvalidSampling::StopTooLong(_) => names.stop,
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
    fn classes_follow_status_and_split_queue_full_from_rate_limits() {
        let queue = from_engine(
            EngineError::QueueFull { capacity: 1 },
            MaxTokensField::default(),
        );
        assert_eq!(queue.class(), ErrorClass::Overloaded);
        let limited = ApiError {
            code: None,
            ..queue.clone()
        };
        assert_eq!(limited.class(), ErrorClass::RateLimited);
        assert_eq!(
            ApiError::not_found("GET", "/x").class(),
            ErrorClass::NotFound
        );
        assert_eq!(ApiError::payload_too_large(1).class(), ErrorClass::TooLarge);
        assert_eq!(ApiError::internal("x").class(), ErrorClass::Internal);
        let down = from_engine(EngineError::Stopped, MaxTokensField::default());
        assert_eq!(down.class(), ErrorClass::Overloaded);
        assert_eq!(
            ApiError::unsupported_media_type(None).class(),
            ErrorClass::InvalidRequest
        );
    }

    #[test]
    fn max_tokens_refusals_name_the_field_the_client_sent() {
        let over_cap = || EngineError::MaxTokensOverCap {
            requested: 500,
            cap: 100,
        };
        let e = from_engine(over_cap(), MaxTokensField::MaxCompletionTokens);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.param.as_deref(), Some("max_completion_tokens"));
        assert_eq!(e.code, Some("max_tokens_over_cap"));
        assert!(
            e.message.starts_with("max_completion_tokens 500 exceeds")
                && e.message.contains("limit of 100")
                && e.message.contains("--max-tokens-cap"),
            "{}",
            e.message
        );
        let e = from_engine(over_cap(), ParamNames::ANTHROPIC);
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        assert!(e.message.starts_with("max_tokens 500"), "{}", e.message);
        let room = EngineError::MaxTokensTooLarge {
            requested: 32_000,
            available: 600,
            prompt: 7592,
        };
        let e = from_engine(room, MaxTokensField::MaxTokens);
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        assert_eq!(e.code, Some("context_length_exceeded"));
        assert!(e.message.contains("600 tokens left"), "{}", e.message);
    }

    #[test]
    fn stop_param_follows_the_family() {
        let bad = || EngineError::InvalidSampling(InvalidSampling::EmptyStop);
        let openai = from_engine(bad(), MaxTokensField::default());
        assert_eq!(openai.param.as_deref(), Some("stop"));
        let anthropic = from_engine(bad(), ParamNames::ANTHROPIC);
        assert_eq!(anthropic.param.as_deref(), Some("stop_sequences"));
    }

    #[test]
    fn the_response_carries_the_error_for_re_rendering() {
        let response = ApiError::invalid_request("bad").into_response();
        let carried = response.extensions().get::<ApiError>().unwrap();
        assert_eq!(carried.message, "bad");
    }

    #[test]
    fn gateway_errors_have_their_status_type_and_retry_after() {
        let e = ApiError::unauthorized("no key");
        assert_eq!(
            (e.status, e.kind),
            (StatusCode::UNAUTHORIZED, ErrorKind::AuthenticationError)
        );
        let e = ApiError::forbidden("not admin");
        assert_eq!(
            (e.status, e.kind),
            (StatusCode::FORBIDDEN, ErrorKind::PermissionError)
        );
        let e = ApiError::rate_limited("slow down", 0);
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!((e.code, e.retry_after), (Some("rate_limited"), Some(1)));
        let e = ApiError::generation_failed("engine went away", true);
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.retry_after.is_some());
        let e = ApiError::generation_failed("decode failed", false);
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
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
