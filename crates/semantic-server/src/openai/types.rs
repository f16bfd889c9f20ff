//! OpenAI wire types for `/v1/chat/completions`.
//!
//! Requests ignore fields we do not know (clients send many); fields we
//! know but do not support are rejected in [`super::convert`], not here, so
//! the error can say why.

use serde::{Deserialize, Serialize};

/// The request body of `POST /v1/chat/completions`.
#[derive(Debug, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<RequestMessage>,
    /// Deprecated by OpenAI in favour of `max_completion_tokens`, still the common one.
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    /// Negative means "draw a fresh seed" (llama.cpp's `-1` convention).
    pub seed: Option<i64>,
    pub stop: Option<StopSequences>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub n: Option<u32>,
    /// End-user id; accepted for compatibility, not used.
    pub user: Option<String>,
    /// Our extension: the agent whose KV cache this request extends.
    pub session_id: Option<String>,
    /// OpenAI's cache-routing key: names the agent when neither a header
    /// nor `session_id` does.
    pub prompt_cache_key: Option<String>,
    /// Extension (as in vLLM): keep generating past end-of-turn tokens
    /// until `max_tokens`, for benchmarks and load tests.
    pub ignore_eos: Option<bool>,
    pub tools: Option<Vec<RequestTool>>,
    /// `"auto"`, `"none"`, `"required"` or `{"type":"function","function":{"name":…}}`;
    /// read as JSON and checked in `convert` so errors can say what fits.
    pub tool_choice: Option<serde_json::Value>,
    /// `false`: at most one call per reply (a forced call is always one).
    pub parallel_tool_calls: Option<bool>,
    /// `{"type":"text"|"json_object"}` or `{"type":"json_schema","json_schema":{…}}`.
    pub response_format: Option<ResponseFormat>,
}

/// One entry of `tools`.
#[derive(Debug, Deserialize)]
pub struct RequestTool {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: FunctionDefinition,
}

#[derive(Debug, Deserialize)]
pub struct FunctionDefinition {
    pub name: String,
    pub description: Option<String>,
    /// A JSON schema of type object; absent means "no arguments".
    pub parameters: Option<serde_json::Value>,
    /// Accepted; every call is constrained or validated the same way.
    pub strict: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
    pub json_schema: Option<JsonSchemaFormat>,
}

#[derive(Debug, Deserialize)]
pub struct JsonSchemaFormat {
    pub name: String,
    pub description: Option<String>,
    /// Absent means any JSON object.
    pub schema: Option<serde_json::Value>,
    /// Accepted; the schema is always enforced by a grammar.
    pub strict: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// `system`, `developer` (OpenAI's newer name for system), `user`, `assistant`, `tool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestRole {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

#[derive(Debug, Deserialize)]
pub struct RequestMessage {
    pub role: RequestRole,
    /// `null` is allowed: assistant messages that only carry tool calls.
    pub content: Option<MessageContent>,
    pub name: Option<String>,
    pub tool_call_id: Option<String>,
    pub tool_calls: Option<Vec<RequestToolCall>>,
}

/// A message body: a string, or an array of typed parts.
///
/// Untagged enums fail with "did not match any variant"; `expecting`
/// replaces that with what fits (serde uses it as the whole message).
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "content must be a string or an array of parts like {\"type\": \"text\", \"text\": \"...\"}"
)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// One part of an array `content`; only `text` parts are supported.
#[derive(Debug, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

/// A tool call in an assistant message the client sends back as history.
#[derive(Debug, Deserialize)]
pub struct RequestToolCall {
    pub id: String,
    pub function: RequestFunctionCall,
}

#[derive(Debug, Deserialize)]
pub struct RequestFunctionCall {
    pub name: String,
    /// A JSON document encoded as a string, per OpenAI.
    pub arguments: String,
}

/// `stop`: a string or an array of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "stop must be a string or an array of strings")]
pub enum StopSequences {
    One(String),
    Many(Vec<String>),
}

impl StopSequences {
    /// Every stop string, in order.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(stop) => vec![stop.clone()],
            Self::Many(stops) => stops.clone(),
        }
    }
}

/// Token counts, OpenAI shape.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct UsageBody {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    pub prompt_tokens_details: PromptTokensDetails,
    /// Our extension: where the cached prompt tokens came from (`cold`,
    /// `hot`, `warm`, `disk` or `shared`), so clients and benchmarks can
    /// tell which tier served a turn without reading server logs.
    pub cache_source: &'static str,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct PromptTokensDetails {
    /// Prompt tokens whose KV was reused instead of prefilled.
    pub cached_tokens: u32,
}

impl From<semantic_domain::Usage> for UsageBody {
    fn from(u: semantic_domain::Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.prompt_tokens + u.completion_tokens,
            prompt_tokens_details: PromptTokensDetails {
                cached_tokens: u.cached_tokens,
            },
            cache_source: u.cache_source.as_str(),
        }
    }
}

/// The non-streaming response.
#[derive(Debug, Serialize)]
pub struct ChatCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: UsageBody,
    pub system_fingerprint: String,
}

#[derive(Debug, Serialize)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    /// Always `null`: log-probabilities are not implemented yet.
    pub logprobs: Option<()>,
    pub finish_reason: &'static str,
}

#[derive(Debug, Serialize)]
pub struct AssistantMessage {
    pub role: &'static str,
    /// `null` when the reply is only tool calls.
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ResponseToolCall>>,
}

/// A call the model made, OpenAI shape.
#[derive(Debug, Serialize)]
pub struct ResponseToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: ResponseFunctionCall,
}

#[derive(Debug, Serialize)]
pub struct ResponseFunctionCall {
    pub name: String,
    /// The arguments object as a JSON string.
    pub arguments: String,
}

/// One SSE chunk of a streaming response.
#[derive(Debug, Serialize)]
pub struct ChatCompletionChunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub system_fingerprint: &'a str,
    pub choices: Vec<ChunkChoice>,
    /// Absent unless `include_usage`; then `null` on every chunk but the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<UsageBody>>,
}

#[derive(Debug, Serialize)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
}

/// What a chunk adds; every field absent on the finishing chunk.
#[derive(Debug, Default, Serialize)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

/// A piece of a streamed tool call: the first names it (`id`, `type`,
/// `function.name`), later ones append to `function.arguments`.
#[derive(Debug, Serialize)]
pub struct ToolCallDelta {
    pub index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: FunctionDelta,
}

#[derive(Debug, Serialize)]
pub struct FunctionDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub arguments: String,
}
