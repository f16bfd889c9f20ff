//! OpenAI Responses API wire types: the request, the items a conversation
//! is made of (input and output alike), and the response object.
//!
//! The request ignores fields we do not know, like every endpoint here.
//! `input`, `tools`, `tool_choice` and `text.format` are read as JSON and
//! checked in [`super::items`] and [`super::convert`], so an error names the
//! exact path at fault and tool types we cannot run are skipped, not refused.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The request body of `POST /v1/responses`.
#[derive(Debug, Deserialize)]
pub struct ResponsesRequest {
    pub model: String,
    /// A string (one user message) or an array of items.
    pub input: Option<Value>,
    /// A system message before the conversation; not carried over from
    /// `previous_response_id` (OpenAI's rule).
    pub instructions: Option<String>,
    pub previous_response_id: Option<String>,
    /// Default `true`, as OpenAI.
    pub store: Option<bool>,
    pub stream: Option<bool>,
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    pub text: Option<TextOptions>,
    pub max_output_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    /// Echoed in the response.
    pub metadata: Option<serde_json::Map<String, Value>>,
    /// End-user id; echoed, not used.
    pub user: Option<String>,
    /// OpenAI's cache-routing key: names the agent when no header does.
    pub prompt_cache_key: Option<String>,
    /// Accepted and ignored: `include`, `reasoning`, `truncation`,
    /// `service_tier` and the rest need nothing from a local model.
    pub reasoning: Option<Value>,
}

/// `text`: the output format (and `verbosity`, ignored).
#[derive(Debug, Default, Deserialize)]
pub struct TextOptions {
    pub format: Option<Value>,
}

/// One item of a conversation. Input and output use the same shapes, so a
/// response's output items can be sent back as the next turn's input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    Message(MessageItem),
    FunctionCall(FunctionCallItem),
    FunctionCallOutput(FunctionCallOutputItem),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageItem {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `user`, `assistant`, `system` or `developer`.
    pub role: String,
    pub content: Vec<Part>,
}

/// A piece of message content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    InputText {
        text: String,
    },
    OutputText {
        text: String,
        #[serde(default)]
        annotations: Vec<Value>,
    },
    Refusal {
        refusal: String,
    },
}

impl Part {
    pub fn text(&self) -> &str {
        match self {
            Self::InputText { text } | Self::OutputText { text, .. } => text,
            Self::Refusal { refusal } => refusal,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallItem {
    pub id: String,
    pub call_id: String,
    pub name: String,
    /// JSON text, as OpenAI sends it.
    pub arguments: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallOutputItem {
    pub id: String,
    pub call_id: String,
    pub output: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl Item {
    pub fn id(&self) -> &str {
        match self {
            Self::Message(m) => &m.id,
            Self::FunctionCall(c) => &c.id,
            Self::FunctionCallOutput(o) => &o.id,
        }
    }
}

/// The response object (`object: "response"`), as returned, streamed in
/// the lifecycle events and stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResponseObject {
    pub id: String,
    pub object: String,
    pub created_at: u64,
    /// `in_progress`, `completed`, `incomplete` or `failed`.
    pub status: String,
    pub error: Option<ResponseError>,
    pub incomplete_details: Option<IncompleteDetails>,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u32>,
    pub model: String,
    pub output: Vec<Item>,
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<String>,
    pub reasoning: Value,
    pub store: bool,
    pub temperature: f32,
    pub text: Value,
    pub tool_choice: Value,
    pub tools: Vec<Value>,
    pub top_p: f32,
    pub truncation: String,
    pub usage: Option<ResponseUsage>,
    pub user: Option<String>,
    pub metadata: serde_json::Map<String, Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResponseError {
    pub code: String,
    pub message: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IncompleteDetails {
    /// `max_output_tokens`.
    pub reason: String,
}

/// Token counts, Responses shape.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResponseUsage {
    pub input_tokens: u32,
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u32,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u32,
    /// Our extension, as on chat completions: which tier the reused KV
    /// came from (`cold`, `hot`, `warm`, `disk`, `shared`).
    pub cache_source: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InputTokensDetails {
    /// Input tokens whose KV was reused instead of prefilled.
    pub cached_tokens: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    pub reasoning_tokens: u32,
}

impl From<semantic_domain::Usage> for ResponseUsage {
    fn from(u: semantic_domain::Usage) -> Self {
        Self {
            input_tokens: u.prompt_tokens,
            input_tokens_details: InputTokensDetails {
                cached_tokens: u.cached_tokens,
            },
            output_tokens: u.completion_tokens,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: 0,
            },
            total_tokens: u.prompt_tokens + u.completion_tokens,
            cache_source: u.cache_source.as_str().to_owned(),
        }
    }
}

/// `DELETE /v1/responses/{id}`.
#[derive(Debug, Serialize)]
pub struct Deleted {
    pub id: String,
    pub object: &'static str,
    pub deleted: bool,
}

/// A page of `GET /v1/responses/{id}/input_items`.
#[derive(Debug, Serialize)]
pub struct ItemList {
    pub object: &'static str,
    pub data: Vec<Item>,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    pub has_more: bool,
}
