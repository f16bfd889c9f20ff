//! One response in the making: what the request settled before the
//! generation ran, the response object in each of its states, and storing
//! it when it completes. Whole and streamed replies share it, so both
//! return (and store) the same object.

use std::sync::Arc;

use semantic_domain::responses::{ResponseStore, StoredResponse};
use semantic_domain::tools::{ParsedCall, ParsedReply};
use semantic_domain::{AgentId, FinishReason, TenantId, Usage};
use serde_json::{json, Map, Value};

use super::chain::store_failed;
use super::items::item_id;
use super::types::{
    FunctionCallItem, IncompleteDetails, Item, MessageItem, Part, ResponseError, ResponseObject,
    ResponseUsage,
};
use crate::error::ApiError;
use crate::tool_use::call_id;

pub const CREATED: &str = "semantic_responses_created_total";
pub const CHAINED: &str = "semantic_responses_chained_total";
pub const CHAINED_INPUT_TOKENS: &str = "semantic_responses_chained_input_tokens_total";
pub const CHAINED_CACHED_TOKENS: &str = "semantic_responses_chained_cached_tokens_total";

/// The series exist from start-up at 0.
pub fn register() {
    for stored in ["true", "false"] {
        metrics::counter!(CREATED, "stored" => stored).increment(0);
    }
    metrics::counter!(CHAINED).increment(0);
    metrics::counter!(CHAINED_INPUT_TOKENS).increment(0);
    metrics::counter!(CHAINED_CACHED_TOKENS).increment(0);
}

/// Everything about a response known before its generation ends.
pub struct Turn {
    pub id: String,
    pub created_at: u64,
    /// The loaded model's id.
    pub model: String,
    pub tenant: TenantId,
    pub agent: Option<AgentId>,
    pub previous_response_id: Option<String>,
    /// This turn's own input items, as stored and listed.
    pub input_items: Vec<Item>,
    /// Where to keep it; `None` for `store: false`.
    pub store: Option<Arc<dyn ResponseStore>>,
    /// Request settings echoed in the response object.
    pub echo: Echo,
}

/// The request's settings as the response object repeats them.
pub struct Echo {
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u32>,
    pub parallel_tool_calls: bool,
    pub temperature: f32,
    pub top_p: f32,
    pub text: Value,
    pub tool_choice: Value,
    pub tools: Vec<Value>,
    pub reasoning: Value,
    pub user: Option<String>,
    pub metadata: Map<String, Value>,
}

impl Turn {
    /// The response object with `status` and what is known of its output.
    pub fn object(&self, status: &str, output: Vec<Item>, usage: Option<Usage>) -> ResponseObject {
        let e = &self.echo;
        ResponseObject {
            id: self.id.clone(),
            object: "response".to_owned(),
            created_at: self.created_at,
            status: status.to_owned(),
            error: None,
            incomplete_details: None,
            instructions: e.instructions.clone(),
            max_output_tokens: e.max_output_tokens,
            model: self.model.clone(),
            output,
            parallel_tool_calls: e.parallel_tool_calls,
            previous_response_id: self.previous_response_id.clone(),
            reasoning: e.reasoning.clone(),
            store: self.store.is_some(),
            temperature: e.temperature,
            text: e.text.clone(),
            tool_choice: e.tool_choice.clone(),
            tools: e.tools.clone(),
            top_p: e.top_p,
            truncation: "disabled".to_owned(),
            usage: usage.map(ResponseUsage::from),
            user: e.user.clone(),
            metadata: e.metadata.clone(),
        }
    }

    /// The finished response: `completed`, or `incomplete` when the token
    /// limit or the window cut it. Counted in the metrics.
    pub fn finished(
        &self,
        reason: &FinishReason,
        usage: Usage,
        output: Vec<Item>,
    ) -> ResponseObject {
        let cut = matches!(reason, FinishReason::MaxTokens | FinishReason::ContextFull);
        let status = if cut { "incomplete" } else { "completed" };
        let mut object = self.object(status, output, Some(usage));
        if cut {
            object.incomplete_details = Some(IncompleteDetails {
                reason: "max_output_tokens".to_owned(),
            });
        }
        self.count(usage);
        object
    }

    /// The response of a generation that failed.
    pub fn failed(&self, error: &ApiError) -> ResponseObject {
        let mut object = self.object("failed", Vec::new(), None);
        object.error = Some(ResponseError {
            code: error.code.unwrap_or("server_error").to_owned(),
            message: error.message.clone(),
        });
        object
    }

    fn count(&self, usage: Usage) {
        let stored = if self.store.is_some() {
            "true"
        } else {
            "false"
        };
        metrics::counter!(CREATED, "stored" => stored).increment(1);
        if self.previous_response_id.is_some() {
            metrics::counter!(CHAINED).increment(1);
            metrics::counter!(CHAINED_INPUT_TOKENS).increment(u64::from(usage.prompt_tokens));
            metrics::counter!(CHAINED_CACHED_TOKENS).increment(u64::from(usage.cached_tokens));
        }
    }

    /// Store `object` durably if the request asked for it (blocking I/O:
    /// an fsync). Done before the client hears of the response, so a
    /// response it was given survives a crash right after.
    /// `reply_text` is the reply as generated, which the next turn renders.
    pub fn persist(&self, object: &ResponseObject, reply_text: &str) -> Result<(), ApiError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let record = StoredResponse {
            id: self.id.clone(),
            tenant: self.tenant.clone(),
            previous: self.previous_response_id.clone(),
            agent: self.agent.clone(),
            created_at: self.created_at,
            response: to_json(object)?,
            input_items: to_json(&self.input_items)?,
            reply_text: reply_text.to_owned(),
        };
        store
            .put(&record)
            .map_err(|e| store_failed(e, &self.id).with_code("store_failed"))
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value)
        .map_err(|e| ApiError::internal(format!("cannot encode the response: {e}")))
}

/// An assistant message item holding `text`.
pub fn message_item(id: String, text: String, status: &str) -> Item {
    Item::Message(MessageItem {
        id,
        status: Some(status.to_owned()),
        role: "assistant".to_owned(),
        content: vec![Part::OutputText {
            text,
            annotations: Vec::new(),
        }],
    })
}

/// A parsed call as a `function_call` item, with fresh ids.
pub fn call_item(call: ParsedCall, status: &str) -> Item {
    Item::FunctionCall(FunctionCallItem {
        id: item_id("fc"),
        call_id: call_id("call_"),
        name: call.name,
        arguments: call.arguments.to_string(),
        status: Some(status.to_owned()),
    })
}

/// A whole reply's output: its text as one message (also when empty and
/// nothing else came), then its calls.
pub fn output_items(reply: ParsedReply) -> Vec<Item> {
    let mut items = Vec::new();
    let text = reply.content.unwrap_or_default();
    if !text.is_empty() || reply.calls.is_empty() {
        items.push(message_item(item_id("msg"), text, "completed"));
    }
    items.extend(reply.calls.into_iter().map(|c| call_item(c, "completed")));
    items
}

/// The `text` setting echoed: the format the client asked for.
pub fn text_echo(format: Option<&Value>) -> Value {
    json!({ "format": format.cloned().unwrap_or_else(|| json!({"type": "text"})) })
}
