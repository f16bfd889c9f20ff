//! Turning an OpenAI chat request into what the engine takes, rejecting what
//! we do not support with a message and a `param` that point at it.

use axum::http::HeaderMap;
use semantic_domain::chat::{ChatMessage, Role, ToolCall};
use semantic_domain::{AgentId, AgentKey, SamplingParams, TenantId};

use super::tools;
use super::types::{
    ChatCompletionRequest, ContentPart, MessageContent, RequestMessage, RequestRole,
    RequestToolCall, StopSequences,
};
use crate::agent_id;
use crate::error::{check_sampling, ApiError, MaxTokensField};
use crate::models;
use crate::state::AppState;
use crate::tenant::CallerTenant;
use crate::tool_use::ToolRequest;

/// A validated chat request, ready to tokenize and submit.
#[derive(Debug)]
pub struct ChatPlan {
    pub messages: Vec<ChatMessage>,
    /// Tools, tool choice and output format, API-neutral.
    pub tools: ToolRequest,
    pub sampling: SamplingParams,
    /// The tenant the request runs for and, if named, its agent.
    pub tenant: TenantId,
    pub agent: Option<AgentKey>,
    pub stream: bool,
    pub include_usage: bool,
    /// Which token-limit field the client used, for error `param`s.
    pub max_tokens_field: MaxTokensField,
}

/// Validate everything that does not need the tokenizer.
pub fn plan(
    state: &AppState,
    headers: &HeaderMap,
    tenant: CallerTenant,
    req: ChatCompletionRequest,
) -> Result<ChatPlan, ApiError> {
    models::resolve(state, &req.model)?;
    state.gateway.limits.check_messages(req.messages.len())?;
    let agent = request_agent(headers, &req).map(|a| tenant.agent(a));
    state.gateway.rate_limits.check_agent(agent.as_ref())?;
    let default_temperature = state.engine.config().default_temperature;
    convert(req, (tenant.0, agent), default_temperature)
}

/// The agent a request names: headers, then `session_id`, `prompt_cache_key`.
pub fn request_agent(headers: &HeaderMap, req: &ChatCompletionRequest) -> Option<AgentId> {
    agent_id::resolve(
        headers,
        &[req.session_id.as_deref(), req.prompt_cache_key.as_deref()],
    )
}

/// The request's own checks and its conversion into domain types: all of
/// [`plan`] that needs no server state (the fuzz target runs exactly this).
pub fn convert(
    req: ChatCompletionRequest,
    (tenant, agent): (TenantId, Option<AgentKey>),
    default_temperature: Option<f32>,
) -> Result<ChatPlan, ApiError> {
    if let Some(n) = req.n.filter(|&n| n != 1) {
        return Err(ApiError::invalid_request(format!(
            "n must be 1 (got {n}); only one choice is supported"
        ))
        .with_param("n"));
    }
    let (sampling, max_tokens_field) = sampling(&req, default_temperature)?;
    let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
    let single_call = req.parallel_tool_calls == Some(false);
    let tools = tools::tool_request(req.tools, req.tool_choice, req.response_format, single_call)?;
    Ok(ChatPlan {
        messages: messages(req.messages)?,
        tools,
        sampling,
        tenant,
        agent,
        stream: req.stream.unwrap_or(false),
        include_usage,
        max_tokens_field,
    })
}

/// Sampling parameters with OpenAI defaults (temperature 1 unless
/// `--default-temperature` says otherwise, top_p 1), validated now so a bad
/// value costs no tokenization.
fn sampling(
    req: &ChatCompletionRequest,
    default_temperature: Option<f32>,
) -> Result<(SamplingParams, MaxTokensField), ApiError> {
    let (max_tokens, field) = match (req.max_completion_tokens, req.max_tokens) {
        (Some(m), _) => (Some(m), MaxTokensField::MaxCompletionTokens),
        (None, m) => (m, MaxTokensField::MaxTokens),
    };
    let params = SamplingParams {
        seed: req.seed.and_then(|s| u64::try_from(s).ok()),
        max_tokens,
        stop: req
            .stop
            .as_ref()
            .map(StopSequences::to_vec)
            .unwrap_or_default(),
        ignore_eos: req.ignore_eos.unwrap_or(false),
        ..SamplingParams::requested(req.temperature, req.top_p, default_temperature)
    };
    check_sampling(&params, field)?;
    Ok((params, field))
}

fn messages(raw: Vec<RequestMessage>) -> Result<Vec<ChatMessage>, ApiError> {
    if raw.is_empty() {
        return Err(
            ApiError::invalid_request("messages must contain at least one message")
                .with_param("messages"),
        );
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect()
}

fn message(index: usize, m: RequestMessage) -> Result<ChatMessage, ApiError> {
    let role = match m.role {
        RequestRole::System | RequestRole::Developer => Role::System,
        RequestRole::User => Role::User,
        RequestRole::Assistant => Role::Assistant,
        RequestRole::Tool => Role::Tool,
    };
    let param = format!("messages[{index}].content");
    let content = match m.content {
        Some(MessageContent::Text(text)) => text,
        Some(MessageContent::Parts(parts)) => join_parts(&param, parts)?,
        // OpenAI allows a null content only beside tool calls.
        None if role == Role::Assistant => String::new(),
        None => {
            return Err(ApiError::invalid_request(format!(
                "{param} is required for a {role} message"
            ))
            .with_param(param))
        }
    };
    Ok(ChatMessage {
        role,
        content,
        tool_calls: m
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(tool_call)
            .collect(),
        tool_call_id: m.tool_call_id,
        name: m.name,
    })
}

/// Concatenate text parts as they are (no separator: the client chose the split).
fn join_parts(param: &str, parts: Vec<ContentPart>) -> Result<String, ApiError> {
    let mut text = String::new();
    for (j, part) in parts.into_iter().enumerate() {
        if part.kind != "text" {
            return Err(ApiError::invalid_request(format!(
                "content part type {:?} is not supported; only \"text\" parts are",
                part.kind
            ))
            .with_param(format!("{param}[{j}].type")));
        }
        match part.text {
            Some(t) => text.push_str(&t),
            None => {
                return Err(
                    ApiError::invalid_request("a text part needs a \"text\" string")
                        .with_param(format!("{param}[{j}].text")),
                )
            }
        }
    }
    Ok(text)
}

/// Templates iterate `arguments` as an object, so decode OpenAI's JSON string;
/// keep it as a string if it is not JSON (some clients send partial output).
fn tool_call(call: RequestToolCall) -> ToolCall {
    let arguments = serde_json::from_str(&call.function.arguments)
        .unwrap_or(serde_json::Value::String(call.function.arguments));
    ToolCall {
        id: call.id,
        name: call.function.name,
        arguments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::parse;

    fn messages_of(body: &str) -> Result<Vec<ChatMessage>, ApiError> {
        let req: ChatCompletionRequest = parse(body.as_bytes())?;
        messages(req.messages)
    }

    #[test]
    fn text_parts_are_concatenated_and_developer_is_system() {
        let m = messages_of(
            r#"{"model":"default","messages":[{"role":"developer","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"Hello, "},{"type":"text","text":"world"}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            vec![
                ChatMessage::system("be brief"),
                ChatMessage::user("Hello, world")
            ]
        );
    }

    #[test]
    fn image_parts_are_rejected_with_their_path() {
        let e = messages_of(
            r#"{"model":"default","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].content[1].type"));
        assert!(e.message.contains("image_url"), "{}", e.message);
    }

    #[test]
    fn tool_history_round_trips() {
        let m = messages_of(
            r#"{"model":"default","messages":[
            {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"42"}]}"#,
        )
        .unwrap();
        assert_eq!(m[0].tool_calls[0].arguments, serde_json::json!({"x": 1}));
        assert_eq!(m[1], ChatMessage::tool("c1", "42"));
    }

    #[test]
    fn bad_content_and_stop_types_say_what_fits() {
        let e = messages_of(r#"{"model":"default","messages":[{"role":"user","content":5}]}"#)
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages[0].content"));
        assert!(e.message.contains("string or an array"), "{}", e.message);
        let e =
            parse::<ChatCompletionRequest>(br#"{"model":"m","messages":[],"stop":3}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("stop"));
        let fits = "stop must be a string or an array of strings";
        assert!(e.message.contains(fits), "{}", e.message);
    }
}
