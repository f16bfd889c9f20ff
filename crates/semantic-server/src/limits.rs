//! Request-shape limits that do not need the model: how large a body and
//! how many messages one request may carry. (The body size is enforced by
//! `extract::ApiJson`; prompt length and `max_tokens` against the context
//! window by the engine.)

use crate::error::ApiError;

/// Default of `--max-messages`: far above any real conversation, low enough
/// that templating a hostile request stays cheap.
pub const DEFAULT_MAX_MESSAGES: usize = 1024;

/// Default of `--max-body-bytes`, 4 MiB: a full 128K-token prompt as JSON
/// fits with room to spare.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Limits every API family applies to its requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    pub max_messages: usize,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_messages: DEFAULT_MAX_MESSAGES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

impl RequestLimits {
    /// 400 naming `messages` when a request carries more than allowed.
    pub fn check_messages(&self, count: usize) -> Result<(), ApiError> {
        if count > self.max_messages {
            return Err(ApiError::invalid_request(format!(
                "messages has {count} entries; this server accepts at most {} (--max-messages)",
                self.max_messages
            ))
            .with_param("messages")
            .with_code("too_many_messages"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_messages_than_allowed_is_400_naming_messages() {
        let limits = RequestLimits {
            max_messages: 2,
            ..RequestLimits::default()
        };
        assert!(limits.check_messages(2).is_ok());
        let e = limits.check_messages(3).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(e.param.as_deref(), Some("messages"));
    }
}
