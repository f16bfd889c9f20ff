//! Anthropic wire types for `/v1/messages` and `/v1/messages/count_tokens`.
//!
//! Requests ignore fields we do not know (`cache_control`, `thinking`,
//! `service_tier`, ...); content blocks are kept loose (a `type` plus the
//! fields any block may carry) so [`super::convert`] can reject what we do
//! not support with the block's path instead of a generic parse failure.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use semantic_domain::{FinishReason, Usage};

/// The request body of `POST /v1/messages` (and of `count_tokens`, which
/// ignores the sampling fields).
#[derive(Debug, Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<InputMessage>,
    /// Required by `/v1/messages`; checked there so the error says so plainly.
    pub max_tokens: Option<u32>,
    pub system: Option<SystemPrompt>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<u32>,
    pub stop_sequences: Option<Vec<String>>,
    pub stream: Option<bool>,
    pub metadata: Option<Metadata>,
    pub tools: Option<Vec<ToolSpec>>,
    pub tool_choice: Option<ToolChoice>,
}

/// `metadata`: Anthropic's `user_id`, plus our `session_id` extension; both
/// may name the agent (see `docs/api.md`).
#[derive(Debug, Default, Deserialize)]
pub struct Metadata {
    pub user_id: Option<String>,
    pub session_id: Option<String>,
}

/// Anthropic messages have only these two roles; `system` is a top-level field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputRole {
    User,
    Assistant,
}

#[derive(Debug, Deserialize)]
pub struct InputMessage {
    pub role: InputRole,
    pub content: MessageContent,
}

/// A message body: a string, or an array of content blocks.
///
/// Untagged enums fail with "did not match any variant"; `expecting`
/// replaces that with what fits (serde uses it as the whole message).
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "content must be a string or an array of content blocks like {\"type\": \"text\", \"text\": \"...\"}"
)]
pub enum MessageContent {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

/// `system`: a string, or an array of text blocks.
#[derive(Debug)]
pub struct SystemPrompt(pub MessageContent);

impl<'de> Deserialize<'de> for SystemPrompt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        MessageContent::deserialize(d)
            .map(Self)
            .map_err(|_| D::Error::custom("system must be a string or an array of text blocks"))
    }
}

/// One content block, any type: `text`, `tool_use` (`id`, `name`, `input`),
/// `tool_result` (`tool_use_id`, `content`, `is_error`), or one we reject.
#[derive(Debug, Deserialize)]
pub struct ContentBlock {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub input: Option<serde_json::Value>,
    pub tool_use_id: Option<String>,
    /// A `tool_result`'s content: a string or an array of blocks. Kept as a
    /// value so an unsupported nested block is reported with its path.
    pub content: Option<serde_json::Value>,
}

/// One entry of `tools`: a client tool (`type` absent or `"custom"`).
#[derive(Debug, Deserialize)]
pub struct ToolSpec {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub name: String,
    pub description: Option<String>,
    /// Required for client tools; optional here so its absence gets a clear error.
    pub input_schema: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct ToolChoice {
    #[serde(rename = "type")]
    pub kind: ToolChoiceKind,
    pub name: Option<String>,
    /// At most one `tool_use` block per reply.
    pub disable_parallel_tool_use: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoiceKind {
    Auto,
    Any,
    Tool,
    None,
}

/// The `count_tokens` response.
#[derive(Debug, Serialize)]
pub struct TokenCount {
    pub input_tokens: u32,
}

/// A content block of the response: text, or a call of one of the tools.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputBlock {
    Text {
        text: String,
    },
    ToolUse {
        /// `toolu_` + 24 random hex digits.
        id: String,
        name: String,
        /// Always a JSON object (`{}` in `content_block_start`).
        input: serde_json::Value,
    },
}

/// The non-streaming response, and the `message` of `message_start`.
#[derive(Debug, Serialize)]
pub struct MessageBody<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    /// The loaded model's id, even when the request said `"default"`.
    pub model: &'a str,
    pub content: Vec<OutputBlock>,
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<String>,
    pub usage: UsageBody,
}

/// Token counts, Anthropic shape: the three input fields add up to the
/// prompt (`input_tokens + cache_read_input_tokens +
/// cache_creation_input_tokens`), as Anthropic defines them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct UsageBody {
    /// Prompt tokens neither read from nor written to the cache.
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// Prompt tokens computed now and kept in the agent's cache.
    pub cache_creation_input_tokens: u32,
    /// Prompt tokens whose KV was reused instead of prefilled.
    pub cache_read_input_tokens: u32,
    /// Our extension, as on the OpenAI side: which tier served the reused
    /// tokens (`cold`, `hot`, `warm`, `disk`, `shared`). Absent from
    /// `message_start`, which goes out before the cache is looked up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_source: Option<&'static str>,
}

impl UsageBody {
    /// The final counts. Only a request that names an agent keeps its KV,
    /// so only then are the freshly computed prompt tokens "cache creation".
    pub fn new(u: Usage, keeps_kv: bool) -> Self {
        let fresh = u.prompt_tokens.saturating_sub(u.cached_tokens);
        let created = if keeps_kv { fresh } else { 0 };
        Self {
            input_tokens: fresh - created,
            output_tokens: u.completion_tokens,
            cache_creation_input_tokens: created,
            cache_read_input_tokens: u.cached_tokens,
            cache_source: Some(u.cache_source.as_str()),
        }
    }

    /// Before generation: the prompt's size is known, its cache split is not
    /// (`message_delta` carries the final counts, which clients overwrite with).
    pub fn provisional(prompt_tokens: u32) -> Self {
        Self {
            input_tokens: prompt_tokens,
            output_tokens: 0,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
            cache_source: None,
        }
    }
}

/// The `stop_reason` of a reply that made tool calls.
pub const TOOL_USE: &str = "tool_use";

/// Anthropic's `stop_reason` and `stop_sequence` for why generation ended.
pub fn stop_reason(reason: FinishReason) -> (&'static str, Option<String>) {
    match reason {
        // Cancelled only reaches a client that is gone; any value would do.
        FinishReason::EndOfTurn | FinishReason::Cancelled => ("end_turn", None),
        FinishReason::StopString(s) => ("stop_sequence", Some(s)),
        FinishReason::MaxTokens => ("max_tokens", None),
        FinishReason::ContextFull => ("model_context_window_exceeded", None),
    }
}

/// One streaming event; `type` is also the SSE `event:` name.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent<'a> {
    MessageStart {
        message: MessageBody<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: OutputBlock,
    },
    Ping,
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDelta,
        usage: UsageBody,
    },
    MessageStop,
}

impl StreamEvent<'_> {
    /// The SSE `event:` name, the same string as the `type` field.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::Ping => "ping",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    TextDelta {
        text: String,
    },
    /// A piece of a `tool_use` block's input; the pieces concatenate to its JSON.
    InputJsonDelta {
        partial_json: String,
    },
}

#[derive(Debug, Serialize)]
pub struct MessageDelta {
    pub stop_reason: &'static str,
    pub stop_sequence: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use semantic_domain::CacheSource;
    use serde_json::json;

    fn usage(prompt: u32, cached: u32) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: 7,
            cached_tokens: cached,
            cache_source: CacheSource::Hot,
        }
    }

    #[test]
    fn input_fields_add_up_to_the_prompt() {
        for keeps_kv in [false, true] {
            let u = UsageBody::new(usage(100, 60), keeps_kv);
            let total = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens;
            assert_eq!(total, 100, "{u:?}");
            assert_eq!(u.cache_read_input_tokens, 60);
            assert_eq!(u.output_tokens, 7);
        }
        let agent = UsageBody::new(usage(100, 60), true);
        assert_eq!(
            (agent.input_tokens, agent.cache_creation_input_tokens),
            (0, 40)
        );
        let anonymous = UsageBody::new(usage(100, 60), false);
        assert_eq!(
            (
                anonymous.input_tokens,
                anonymous.cache_creation_input_tokens
            ),
            (40, 0)
        );
    }

    #[test]
    fn events_serialize_with_their_type_and_name() {
        let ping = StreamEvent::Ping;
        assert_eq!(
            serde_json::to_value(&ping).unwrap(),
            json!({"type": "ping"})
        );
        let delta = StreamEvent::ContentBlockDelta {
            index: 0,
            delta: BlockDelta::TextDelta { text: "hi".into() },
        };
        assert_eq!(
            serde_json::to_value(&delta).unwrap(),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}})
        );
        assert_eq!(delta.name(), "content_block_delta");
        let start = UsageBody::provisional(12);
        assert_eq!(
            serde_json::to_value(start).unwrap(),
            json!({"input_tokens": 12, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
        );
    }

    #[test]
    fn content_and_system_of_the_wrong_shape_say_what_fits() {
        let bad =
            |body: &str| crate::extract::parse::<MessagesRequest>(body.as_bytes()).unwrap_err();
        let e = bad(r#"{"model":"m","messages":[{"role":"user","content":5}]}"#);
        assert_eq!(e.param.as_deref(), Some("messages[0].content"));
        let fits = "content must be a string or an array of content blocks like";
        assert!(e.message.contains(fits), "{}", e.message);
        let e = bad(r#"{"model":"m","messages":[],"system":{"type":"text"}}"#);
        assert_eq!(e.param.as_deref(), Some("system"));
        let fits = "system must be a string or an array of text blocks";
        assert!(e.message.contains(fits), "{}", e.message);
    }

    #[test]
    fn stop_reasons_follow_anthropic() {
        let stop = stop_reason(FinishReason::StopString("\n\n".into()));
        assert_eq!(stop, ("stop_sequence", Some("\n\n".to_owned())));
        assert_eq!(stop_reason(FinishReason::EndOfTurn), ("end_turn", None));
        assert_eq!(stop_reason(FinishReason::MaxTokens), ("max_tokens", None));
    }
}
