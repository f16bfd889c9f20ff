//! Turning an Anthropic Messages request into what the engine takes,
//! rejecting what we do not support with a message and a `param` (the
//! block's path, e.g. `messages[1].content[0].type`) that point at it.

use std::collections::HashMap;

use axum::http::HeaderMap;
use semantic_domain::chat::{ChatMessage, ToolCall};
use semantic_domain::{AgentId, AgentKey, SamplingParams, TenantId};
use semantic_engine::EngineHandle;
use serde_json::{json, Value};

use super::tools;
use super::types::{
    ContentBlock, InputMessage, InputRole, MessageContent, MessagesRequest, SystemPrompt,
};
use crate::agent_id;
use crate::error::{check_sampling, ApiError, ParamNames};
use crate::models;
use crate::prompt::{self, Conversation, Prepared};
use crate::state::AppState;
use crate::tenant::CallerTenant;

/// Text blocks of one message are joined with a blank line: Anthropic
/// clients use blocks as separate paragraphs (reminders, then the prompt).
const BLOCK_SEPARATOR: &str = "\n\n";

/// How a system text block of per-request billing metadata starts. Claude
/// Code puts `x-anthropic-billing-header: cc_version=…; cc_entrypoint=…;
/// cch=<nonce>;` first in `system`, with a nonce that changes on every
/// request: kept, it would make every prompt differ from the previous one
/// a few tokens in, and no KV could be reused. It is attribution for
/// Anthropic's billing, not an instruction, so it is not rendered.
pub const BILLING_HEADER_PREFIX: &str = "x-anthropic-billing-header:";

/// A validated `/v1/messages` request, ready to tokenize and submit.
#[derive(Debug)]
pub struct MessagesPlan {
    pub conversation: Conversation,
    pub sampling: SamplingParams,
    /// The tenant the request runs for and, if named, its agent.
    pub tenant: TenantId,
    pub agent: Option<AgentKey>,
    pub stream: bool,
}

/// Validate everything that does not need the tokenizer.
pub fn plan(
    state: &AppState,
    headers: &HeaderMap,
    tenant: CallerTenant,
    req: MessagesRequest,
) -> Result<MessagesPlan, ApiError> {
    models::resolve(state, &req.model)?;
    state.gateway.limits.check_messages(req.messages.len())?;
    let default_temperature = state.engine.config().default_temperature;
    let plan = convert(req, headers, tenant, default_temperature)?;
    state.gateway.rate_limits.check_agent(plan.agent.as_ref())?;
    Ok(plan)
}

/// The request's own checks and its conversion into domain types: all of
/// [`plan`] that needs no server state (the fuzz target runs exactly this).
pub fn convert(
    req: MessagesRequest,
    headers: &HeaderMap,
    tenant: CallerTenant,
    default_temperature: Option<f32>,
) -> Result<MessagesPlan, ApiError> {
    let sampling = sampling(&req, default_temperature)?;
    let agent = agent(headers, &req).map(|a| tenant.agent(a));
    Ok(MessagesPlan {
        stream: req.stream.unwrap_or(false),
        conversation: prompt_of(req)?,
        sampling,
        tenant: tenant.0,
        agent,
    })
}

/// The prompt part of a request (model, system, messages, tools), which
/// `count_tokens` and `/v1/messages` share.
pub fn conversation(state: &AppState, req: MessagesRequest) -> Result<Conversation, ApiError> {
    models::resolve(state, &req.model)?;
    state.gateway.limits.check_messages(req.messages.len())?;
    prompt_of(req)
}

/// What `count_tokens` checks of a request beyond the model and its size.
pub fn prompt_of(req: MessagesRequest) -> Result<Conversation, ApiError> {
    let tools = tools::tool_request(req.tools, req.tool_choice)?;
    let (messages, prefill) = messages(req.system, req.messages)?;
    Ok(Conversation {
        messages,
        tools,
        prefill,
    })
}

/// Prepare tool use, render and tokenize (on the blocking pool), with
/// errors in Anthropic's field names.
pub async fn prepare(
    engine: &EngineHandle,
    conversation: Conversation,
) -> Result<Prepared, ApiError> {
    let choice = conversation.tools.choice.clone();
    let tool_error = move |e| tools::api_error(e, &choice);
    prompt::prepare(engine, conversation, ParamNames::ANTHROPIC, tool_error).await
}

/// `X-Agent-ID` > `X-Session-ID` > `metadata.session_id` > `metadata.user_id`.
fn agent(headers: &HeaderMap, req: &MessagesRequest) -> Option<AgentId> {
    let metadata = req.metadata.as_ref();
    let body = [
        metadata.and_then(|m| m.session_id.as_deref()),
        metadata.and_then(|m| m.user_id.as_deref()),
    ];
    agent_id::resolve(headers, &body)
}

/// Anthropic defaults (temperature 1 unless `--default-temperature` says
/// otherwise, no top-p/top-k) and its temperature range 0..=1;
/// `max_tokens` is required.
fn sampling(
    req: &MessagesRequest,
    default_temperature: Option<f32>,
) -> Result<SamplingParams, ApiError> {
    let Some(max_tokens) = req.max_tokens else {
        return Err(
            ApiError::invalid_request("max_tokens: field required").with_param("max_tokens")
        );
    };
    if let Some(t) = req.temperature.filter(|t| !(0.0..=1.0).contains(t)) {
        return Err(ApiError::invalid_request(format!(
            "temperature must be between 0 and 1, got {t}"
        ))
        .with_param("temperature"));
    }
    let base = SamplingParams::requested(req.temperature, req.top_p, default_temperature);
    let params = SamplingParams {
        top_k: req.top_k.unwrap_or(base.top_k),
        max_tokens: Some(max_tokens),
        stop: req.stop_sequences.clone().unwrap_or_default(),
        ..base
    };
    check_sampling(&params, ParamNames::ANTHROPIC)?;
    Ok(params)
}

/// The system prompt first, then every message; a trailing assistant
/// message becomes the prefill the reply continues.
fn messages(
    system: Option<SystemPrompt>,
    raw: Vec<InputMessage>,
) -> Result<(Vec<ChatMessage>, Option<String>), ApiError> {
    check_roles(&raw)?;
    let mut out = Vec::with_capacity(raw.len() + 1);
    if let Some(text) = system.map(system_text).transpose()? {
        // An empty system prompt means none: the template's default applies.
        if !text.is_empty() {
            out.push(ChatMessage::system(text));
        }
    }
    let last = raw.len() - 1;
    let mut prefill = None;
    let mut tool_names = HashMap::new();
    for (i, m) in raw.into_iter().enumerate() {
        let param = format!("messages[{i}].content");
        match m.role {
            InputRole::User => user_messages(&param, m.content, &tool_names, &mut out)?,
            InputRole::Assistant => {
                let message = assistant_message(&param, m.content, &mut tool_names)?;
                if i == last && message.tool_calls.is_empty() {
                    prefill = Some(message.content);
                } else {
                    out.push(message);
                }
            }
        }
    }
    Ok((out, prefill))
}

/// At least one message, and the first from the user (as Anthropic requires).
fn check_roles(raw: &[InputMessage]) -> Result<(), ApiError> {
    match raw.first() {
        None => Err(
            ApiError::invalid_request("messages must contain at least one message")
                .with_param("messages"),
        ),
        Some(first) if first.role != InputRole::User => Err(ApiError::invalid_request(
            "the first message must have role \"user\"",
        )
        .with_param("messages[0].role")),
        Some(_) => Ok(()),
    }
}

fn system_text(system: SystemPrompt) -> Result<String, ApiError> {
    match system.0 {
        MessageContent::Text(text) => Ok(text),
        MessageContent::Blocks(blocks) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (j, block) in blocks.into_iter().enumerate() {
                let param = format!("system[{j}]");
                if block.kind != "text" {
                    return Err(unsupported(&param, &block.kind, "the system prompt"));
                }
                let text = block_text(&param, block)?;
                if !text.starts_with(BILLING_HEADER_PREFIX) {
                    texts.push(text);
                }
            }
            Ok(texts.join(BLOCK_SEPARATOR))
        }
    }
}

/// A user turn: its `tool_result` blocks as tool messages (they answer the
/// previous assistant turn, so they come first), then its text, if any.
fn user_messages(
    param: &str,
    content: MessageContent,
    tool_names: &HashMap<String, String>,
    out: &mut Vec<ChatMessage>,
) -> Result<(), ApiError> {
    let blocks = match content {
        MessageContent::Text(text) => {
            out.push(ChatMessage::user(text));
            return Ok(());
        }
        MessageContent::Blocks(blocks) => blocks,
    };
    let mut texts = Vec::new();
    let mut results = 0;
    for (j, block) in blocks.into_iter().enumerate() {
        let param = format!("{param}[{j}]");
        match block.kind.as_str() {
            "text" => texts.push(block_text(&param, block)?),
            "tool_result" => {
                out.push(tool_result(&param, block, tool_names)?);
                results += 1;
            }
            other => return Err(unsupported(&param, other, "a user message")),
        }
    }
    if !texts.is_empty() || results == 0 {
        out.push(ChatMessage::user(texts.join(BLOCK_SEPARATOR)));
    }
    Ok(())
}

/// An assistant turn: its text, and its `tool_use` blocks as tool calls.
/// Earlier turns' thinking blocks are dropped, as Anthropic does.
fn assistant_message(
    param: &str,
    content: MessageContent,
    tool_names: &mut HashMap<String, String>,
) -> Result<ChatMessage, ApiError> {
    let blocks = match content {
        MessageContent::Text(text) => return Ok(ChatMessage::assistant(text)),
        MessageContent::Blocks(blocks) => blocks,
    };
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.into_iter().enumerate() {
        let param = format!("{param}[{j}]");
        match block.kind.as_str() {
            "text" => texts.push(block_text(&param, block)?),
            "tool_use" => {
                let call = tool_use(&param, block)?;
                tool_names.insert(call.id.clone(), call.name.clone());
                calls.push(call);
            }
            "thinking" | "redacted_thinking" => {}
            other => return Err(unsupported(&param, other, "an assistant message")),
        }
    }
    Ok(ChatMessage {
        tool_calls: calls,
        ..ChatMessage::assistant(texts.join(BLOCK_SEPARATOR))
    })
}

fn block_text(param: &str, block: ContentBlock) -> Result<String, ApiError> {
    block.text.ok_or_else(|| {
        ApiError::invalid_request("a text block needs a \"text\" string")
            .with_param(format!("{param}.text"))
    })
}

fn tool_use(param: &str, block: ContentBlock) -> Result<ToolCall, ApiError> {
    let (Some(id), Some(name)) = (block.id, block.name) else {
        return Err(ApiError::invalid_request(
            "a tool_use block needs \"id\" and \"name\" strings",
        )
        .with_param(param.to_owned()));
    };
    Ok(ToolCall {
        id,
        name,
        arguments: block.input.unwrap_or_else(|| json!({})),
    })
}

/// A tool message answering `tool_use_id`, named after the tool that was
/// called when the history shows it (some templates print the name).
fn tool_result(
    param: &str,
    block: ContentBlock,
    tool_names: &HashMap<String, String>,
) -> Result<ChatMessage, ApiError> {
    let Some(id) = block.tool_use_id else {
        return Err(ApiError::invalid_request(
            "a tool_result block needs a \"tool_use_id\" string",
        )
        .with_param(format!("{param}.tool_use_id")));
    };
    let text = tool_result_text(&format!("{param}.content"), block.content)?;
    Ok(ChatMessage {
        name: tool_names.get(&id).cloned(),
        ..ChatMessage::tool(id, text)
    })
}

/// A tool result's content: absent, a string, or an array of text blocks.
fn tool_result_text(param: &str, content: Option<Value>) -> Result<String, ApiError> {
    let items = match content {
        None | Some(Value::Null) => return Ok(String::new()),
        Some(Value::String(text)) => return Ok(text),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::invalid_request(
                "tool_result content must be a string or an array of text blocks",
            )
            .with_param(param.to_owned()))
        }
    };
    let mut texts = Vec::with_capacity(items.len());
    for (k, item) in items.iter().enumerate() {
        let param = format!("{param}[{k}]");
        match item.get("type").and_then(Value::as_str) {
            Some("text") => match item.get("text").and_then(Value::as_str) {
                Some(text) => texts.push(text.to_owned()),
                None => {
                    return Err(
                        ApiError::invalid_request("a text block needs a \"text\" string")
                            .with_param(format!("{param}.text")),
                    )
                }
            },
            kind => {
                return Err(unsupported(
                    &param,
                    kind.unwrap_or("(none)"),
                    "a tool result",
                ))
            }
        }
    }
    Ok(texts.join(BLOCK_SEPARATOR))
}

/// A content block type we cannot use here; images and documents get the
/// reason (the model reads text only).
fn unsupported(param: &str, kind: &str, place: &str) -> ApiError {
    let why = match kind {
        "image" | "document" => "the loaded model reads text only".to_owned(),
        _ => format!("{place} may hold only the block types documented in docs/api.md"),
    };
    ApiError::invalid_request(format!(
        "content block type {kind:?} is not supported in {place}: {why}"
    ))
    .with_param(format!("{param}.type"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::parse;

    fn convert(body: &str) -> Result<(Vec<ChatMessage>, Option<String>), ApiError> {
        let req: MessagesRequest = parse(body.as_bytes())?;
        messages(req.system, req.messages)
    }

    fn param_of(body: &str) -> String {
        convert(body).unwrap_err().param.unwrap_or_default()
    }

    #[test]
    fn system_blocks_and_text_blocks_become_plain_messages() {
        let (m, prefill) = convert(
            r#"{"model":"default","system":[{"type":"text","text":"be"},{"type":"text","text":"brief"}],
            "messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b","cache_control":{"type":"ephemeral"}}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            vec![
                ChatMessage::system("be\n\nbrief"),
                ChatMessage::user("a\n\nb")
            ]
        );
        assert_eq!(prefill, None);
    }

    #[test]
    fn the_billing_header_block_is_not_rendered() {
        let body = |nonce: &str| {
            format!(
                r#"{{"model":"default","system":[
                {{"type":"text","text":"x-anthropic-billing-header: cc_version=2.1.328.abc; cc_entrypoint=sdk-cli; cch={nonce};"}},
                {{"type":"text","text":"You are a coding agent.","cache_control":{{"type":"ephemeral"}}}}],
                "messages":[{{"role":"user","content":"hi"}}]}}"#
            )
        };
        let (a, _) = convert(&body("1a2b3")).unwrap();
        let (b, _) = convert(&body("9f8e7")).unwrap();
        assert_eq!(a[0], ChatMessage::system("You are a coding agent."));
        assert_eq!(a, b, "requests differing only in the nonce render alike");
    }

    #[test]
    fn tool_use_and_tool_result_map_to_tool_calls_and_tool_messages() {
        let (m, _) = convert(
            r#"{"model":"default","messages":[
            {"role":"user","content":"weather?"},
            {"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"s"},{"type":"text","text":"checking"},
              {"type":"tool_use","id":"tu_1","name":"get_weather","input":{"city":"Paris"}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"tu_1","content":[{"type":"text","text":"sunny"}]},
              {"type":"text","text":"thanks"}]}]}"#,
        )
        .unwrap();
        assert_eq!(m.len(), 4, "{m:?}");
        assert_eq!(m[1].content, "checking");
        assert_eq!(m[1].tool_calls[0].name, "get_weather");
        assert_eq!(m[1].tool_calls[0].arguments, json!({"city": "Paris"}));
        let mut result = ChatMessage::tool("tu_1", "sunny");
        result.name = Some("get_weather".into());
        assert_eq!(m[2], result);
        assert_eq!(m[3], ChatMessage::user("thanks"));
    }

    #[test]
    fn a_trailing_assistant_message_is_the_prefill() {
        let (m, prefill) = convert(
            r#"{"model":"default","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Hello"}]}"#,
        )
        .unwrap();
        assert_eq!(m, vec![ChatMessage::user("hi")]);
        assert_eq!(prefill.as_deref(), Some("Hello"));
    }

    #[test]
    fn unsupported_blocks_and_roles_are_rejected_with_their_path() {
        let image = r#"{"model":"default","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},
            {"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"x"}}]}]}"#;
        assert_eq!(param_of(image), "messages[2].content[0].type");
        assert!(convert(image).unwrap_err().message.contains("text only"));
        let nested = r#"{"model":"default","messages":[{"role":"user","content":[
            {"type":"tool_result","tool_use_id":"t","content":[{"type":"document","source":{}}]}]}]}"#;
        assert_eq!(param_of(nested), "messages[0].content[0].content[0].type");
        let first = r#"{"model":"default","messages":[{"role":"assistant","content":"x"}]}"#;
        assert_eq!(param_of(first), "messages[0].role");
        assert_eq!(param_of(r#"{"model":"default","messages":[]}"#), "messages");
        let system = r#"{"model":"default","system":[{"type":"image"}],"messages":[{"role":"user","content":"x"}]}"#;
        assert_eq!(param_of(system), "system[0].type");
    }

    #[test]
    fn max_tokens_is_required_and_temperature_stops_at_one() {
        let req: MessagesRequest =
            parse(br#"{"model":"default","messages":[{"role":"user","content":"x"}]}"#).unwrap();
        let e = sampling(&req, None).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        assert!(e.message.contains("field required"), "{}", e.message);
        let req: MessagesRequest = parse(
            br#"{"model":"default","max_tokens":5,"temperature":1.5,"messages":[{"role":"user","content":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(
            sampling(&req, None).unwrap_err().param.as_deref(),
            Some("temperature")
        );
        let req: MessagesRequest = parse(
            br#"{"model":"default","max_tokens":5,"stop_sequences":[""],"messages":[{"role":"user","content":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(
            sampling(&req, None).unwrap_err().param.as_deref(),
            Some("stop_sequences")
        );
    }
}
