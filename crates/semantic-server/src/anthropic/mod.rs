//! The Anthropic-compatible API (`/v1/messages`, `/v1/messages/count_tokens`):
//! wire types, request conversion, handlers, the SSE event stream and the
//! error envelope `crate::error_envelope` renders on these routes.

pub mod convert;
pub mod count_tokens;
pub mod envelope;
pub mod messages;
pub mod stream;
pub mod tools;
pub mod types;

/// The routes' common prefix; errors under it use Anthropic's envelope.
pub const PATH_PREFIX: &str = "/v1/messages";

/// Whether `path` is one of this family's (exactly the prefix, or under it).
pub fn owns(path: &str) -> bool {
    path.strip_prefix(PATH_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}
