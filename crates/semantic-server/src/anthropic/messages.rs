//! `POST /v1/messages`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use semantic_domain::tools::{ParsedReply, ReplyParser};
use semantic_domain::GenerateRequest;
use semantic_engine::{EngineHandle, GenerationStream};

use super::types::{stop_reason, MessageBody, MessagesRequest, OutputBlock, UsageBody, TOOL_USE};
use super::{convert, stream, tools};
use crate::error::{from_engine, ApiError, ParamNames};
use crate::extract::ApiJson;
use crate::prompt::Prepared;
use crate::sse;
use crate::state::SharedState;

/// What the response (or every event of the stream) of one message needs
/// beyond the generation itself.
#[derive(Clone, Debug)]
pub struct MessageMeta {
    /// `msg_` + a random UUID.
    pub id: String,
    /// The loaded model's id, even when the request said `"default"`.
    pub model: String,
    pub prompt_tokens: u32,
    /// The request names an agent, so its prompt's KV stays cached.
    pub keeps_kv: bool,
}

impl MessageMeta {
    /// The response body around `content`; `usage` and the stop fields as given.
    pub fn body(
        &self,
        content: Vec<OutputBlock>,
        stop: (Option<&'static str>, Option<String>),
        usage: UsageBody,
    ) -> MessageBody<'_> {
        MessageBody {
            id: &self.id,
            kind: "message",
            role: "assistant",
            model: &self.model,
            content,
            stop_reason: stop.0,
            stop_sequence: stop.1,
            usage,
        }
    }
}

/// Validate, tokenize, submit, then answer whole or as an SSE stream.
pub async fn create(
    State(state): State<SharedState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<MessagesRequest>,
) -> Result<Response, ApiError> {
    let plan = convert::plan(&state, &headers, request)?;
    let Prepared {
        tokens: prompt,
        tool_use,
    } = convert::prepare(&state.engine, plan.conversation).await?;
    let meta = MessageMeta {
        id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
        model: state.model_id.clone(),
        prompt_tokens: u32::try_from(prompt.len()).unwrap_or(u32::MAX),
        keeps_kv: plan.agent.is_some(),
    };
    let mut sampling = plan.sampling;
    sampling.grammar = tool_use.grammar;
    let mut generation = state
        .engine
        .submit(GenerateRequest {
            prompt,
            sampling,
            agent: plan.agent,
        })
        .map_err(|e| from_engine(e, ParamNames::ANTHROPIC))?;
    crate::telemetry::phases::trace(&mut generation);
    tracing::debug!(request = %generation.id(), stream = plan.stream, "message submitted");
    if plan.stream {
        Ok(sse::response(stream::events(
            generation,
            meta,
            tool_use.parser,
        )))
    } else {
        complete(&state.engine, generation, meta, tool_use.parser).await
    }
}

/// Wait for the whole generation. If the client goes away first, axum drops
/// this future and with it `generation`, which cancels the request.
/// Tool calls, when the request may make any, are read out of the text.
async fn complete(
    engine: &EngineHandle,
    generation: GenerationStream,
    meta: MessageMeta,
    parser: Option<ReplyParser>,
) -> Result<Response, ApiError> {
    let done = generation
        .collect()
        .await
        .map_err(|message| ApiError::generation_failed(message, !engine.is_accepting()))?;
    let reply = match parser {
        Some(parser) => parser.parse_whole(&done.text),
        None => ParsedReply {
            content: Some(done.text),
            calls: Vec::new(),
        },
    };
    let (reason, sequence) = if reply.calls.is_empty() {
        stop_reason(done.reason)
    } else {
        (TOOL_USE, None)
    };
    let content = tools::content_blocks(reply);
    let usage = UsageBody::new(done.usage, meta.keeps_kv);
    let body = meta.body(content, (Some(reason), sequence), usage);
    Ok(Json(body).into_response())
}
