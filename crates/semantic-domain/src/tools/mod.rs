//! Tool use and constrained output, independent of any wire API.
//!
//! The OpenAI and Anthropic adapters map their request shapes onto
//! [`ToolSpec`], [`ToolChoice`] and [`OutputFormat`], then share the rest:
//! validation ([`spec`]), how tools and tool history reach the prompt
//! ([`prompt`]), which grammar constrains the output ([`constraint`]) and
//! how calls are read back out of the text, whole or streamed ([`reply`]).

pub mod constraint;
pub mod prompt;
pub mod reply;
pub mod spec;

pub use constraint::ConstraintPlan;
pub use prompt::{PromptInput, CALL_CLOSE, CALL_OPEN};
pub use reply::{parse_reply, ParsedCall, ParsedReply, ReplyEvent, ReplyParser};
pub use spec::{OutputFormat, Target, ToolChoice, ToolField, ToolSpec, ToolUseError};
