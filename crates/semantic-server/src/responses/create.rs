//! `POST /v1/responses`.
//!
//! Which agent a turn runs as (its KV is reused from whichever tier holds
//! it): the `X-Agent-ID` / `X-Session-ID` header, else `prompt_cache_key`,
//! else the agent of the `previous_response_id` chain, else, for a stored
//! response, a new agent named after the response (the chain's first turn
//! names its agent). A `store: false` turn with none of these is anonymous
//! and reuses through the longest shared prefix.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use semantic_domain::{AgentId, SamplingParams};
use serde_json::{json, Value};

use super::chain::{self, off_runtime, Chain};
use super::convert;
use super::items::{self, item_id, Entry};
use super::stream;
use super::turn::{output_items, text_echo, Echo, Turn};
use super::types::{Item, ResponsesRequest};
use crate::agent_id;
use crate::error::{ApiError, ParamNames};
use crate::extract::ApiJson;
use crate::generation;
use crate::models;
use crate::prompt::{self, Conversation};
use crate::sse;
use crate::state::{now_unix, SharedState};
use crate::tenant::CallerTenant;

/// Validate, resolve the chain, tokenize, submit, then answer whole (after
/// storing) or as an SSE stream (stored before its terminal event).
pub async fn create(
    State(state): State<SharedState>,
    headers: HeaderMap,
    tenant: CallerTenant,
    ApiJson(req): ApiJson<ResponsesRequest>,
) -> Result<Response, ApiError> {
    models::resolve(&state, &req.model)?;
    let Some(input) = req.input.as_ref() else {
        return Err(ApiError::invalid_request("input is required").with_param("input"));
    };
    let (input_items, tools, sampling) =
        read_request(&req, input, state.engine.config().default_temperature)?;
    let chain = match req.previous_response_id.clone() {
        Some(id) => chain::resolve(state.gateway.responses.clone(), tenant.0.clone(), id).await?,
        None => Chain::default(),
    };
    let mut conversation = chain.entries;
    conversation.extend(input_items.iter().cloned().map(Entry::Item));
    let messages = items::to_messages(req.instructions.as_deref(), &conversation);
    state.gateway.limits.check_messages(messages.len())?;

    let id = item_id("resp");
    let store = req.store.unwrap_or(true);
    let agent = agent_id::resolve(&headers, &[req.prompt_cache_key.as_deref()])
        .or(chain.agent)
        .or_else(|| store.then(|| AgentId::parse(&id).ok()).flatten());
    let agent_key = agent.clone().map(|a| tenant.agent(a));
    state.gateway.rate_limits.check_agent(agent_key.as_ref())?;

    let conversation = Conversation {
        messages,
        tools: tools.request,
        prefill: None,
    };
    let names = ParamNames::RESPONSES;
    let tool_error = convert::tool_error(tools.positions);
    let prepared = prompt::prepare(&state.engine, conversation, names, tool_error).await?;
    let echo = echo(&req, &sampling);
    let submitted = generation::submit(
        &state.engine,
        prepared,
        sampling,
        (tenant.0.clone(), agent_key),
        names,
    )?;
    let turn = Turn {
        id,
        created_at: now_unix(),
        model: state.model_id.clone(),
        tenant: tenant.0,
        agent,
        previous_response_id: req.previous_response_id,
        input_items,
        store: store.then(|| state.gateway.responses.clone()),
        echo,
    };
    tracing::debug!(response = %turn.id, stream = req.stream == Some(true), "response submitted");
    if req.stream == Some(true) {
        return Ok(sse::response(stream::events(submitted, turn)));
    }
    let whole = generation::whole_reply(&state.engine, submitted).await?;
    let object = turn.finished(&whole.reason, whole.usage, output_items(whole.reply));
    let reply_text = whole.text;
    let object = off_runtime(move || turn.persist(&object, &reply_text).map(|()| object)).await?;
    Ok(Json(object).into_response())
}

/// The request's own checks and its conversion: `input` into items, tools,
/// sampling (the fuzz target runs exactly this, then renders the items).
pub fn read_request(
    req: &ResponsesRequest,
    input: &Value,
    default_temperature: Option<f32>,
) -> Result<(Vec<Item>, convert::Tools, SamplingParams), ApiError> {
    let input_items = items::parse_input(input)?;
    let tools = convert::tools(req)?;
    let sampling = convert::sampling(req, default_temperature)?;
    Ok((input_items, tools, sampling))
}

/// The request's settings as the response repeats them.
fn echo(req: &ResponsesRequest, sampling: &SamplingParams) -> Echo {
    Echo {
        instructions: req.instructions.clone(),
        max_output_tokens: req.max_output_tokens,
        parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
        temperature: sampling.temperature,
        top_p: sampling.top_p,
        text: text_echo(req.text.as_ref().and_then(|t| t.format.as_ref())),
        tool_choice: req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        tools: req.tools.clone().unwrap_or_default(),
        reasoning: req
            .reasoning
            .clone()
            .unwrap_or_else(|| json!({"effort": null, "summary": null})),
        user: req.user.clone(),
        metadata: match &req.metadata {
            Some(m) => m.clone(),
            None => serde_json::Map::<String, Value>::new(),
        },
    }
}
