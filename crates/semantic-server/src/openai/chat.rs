//! `POST /v1/chat/completions`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use semantic_domain::chat::ChatMessage;
use semantic_domain::tools::ReplyParser;
use semantic_domain::{GenerateRequest, TokenId};
use semantic_engine::{EngineHandle, GenerationStream};

use super::convert;
use super::stream;
use super::tools;
use super::types::{AssistantMessage, ChatCompletion, ChatCompletionRequest, Choice};
use crate::error::{from_engine, ApiError, MaxTokensField};
use crate::extract::ApiJson;
use crate::sse;
use crate::state::{now_unix, SharedState};
use crate::tool_use::{self, ToolRequest, ToolUse};

/// The `finish_reason` of a reply that made tool calls.
pub const TOOL_CALLS: &str = "tool_calls";

/// Fields every response (and every chunk) of one completion repeats.
#[derive(Clone, Debug)]
pub struct ResponseMeta {
    pub id: String,
    pub created: u64,
    /// The loaded model's id, even when the request said `"default"`.
    pub model: String,
    pub fingerprint: String,
}

/// Validate, tokenize, submit, then answer whole or as an SSE stream.
pub async fn completions(
    State(state): State<SharedState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let plan = convert::plan(&state, &headers, request)?;
    let field = plan.max_tokens_field;
    let (prompt, tool_use) = prepare(&state.engine, plan.messages, plan.tools, field).await?;
    let mut sampling = plan.sampling;
    sampling.grammar = tool_use.grammar;
    let mut generation = state
        .engine
        .submit(GenerateRequest {
            prompt,
            sampling,
            agent: plan.agent,
        })
        .map_err(|e| from_engine(e, field))?;
    crate::telemetry::phases::trace(&mut generation);
    let meta = ResponseMeta {
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        created: now_unix(),
        model: state.model_id.clone(),
        fingerprint: state.fingerprint.clone(),
    };
    tracing::debug!(request = %generation.id(), stream = plan.stream, "chat completion submitted");
    if plan.stream {
        Ok(sse::response(stream::events(
            generation,
            meta,
            plan.include_usage,
            tool_use.parser,
        )))
    } else {
        complete(&state.engine, generation, meta, tool_use.parser).await
    }
}

/// Prepare tool use (validation, schema → grammar), render the chat
/// template and tokenize, on a blocking thread.
///
/// Measured on the test model (2-core machine): about 0.23 ms per KiB of
/// message text (0.7 ms for 1 KiB, 14 ms for 64 KiB, 230 ms for 1 MiB).
/// Even a short prompt would hold a runtime worker far longer than tokio's
/// guideline between awaits, and the hand-off costs only microseconds, so
/// every prompt goes to the blocking pool.
async fn prepare(
    engine: &EngineHandle,
    messages: Vec<ChatMessage>,
    tools: ToolRequest,
    field: MaxTokensField,
) -> Result<(Vec<TokenId>, ToolUse), ApiError> {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || {
        let model = engine.model();
        let tool_use = tool_use::prepare(model, &tools, &messages).map_err(tools::api_error)?;
        let input = &tool_use.prompt;
        let prompt = model
            .tokenize_chat(&input.messages, input.tools.as_deref())
            .map_err(|e| from_engine(e, field))?;
        Ok((prompt, tool_use))
    })
    .await
    .map_err(|e| ApiError::internal(format!("tokenizer task failed: {e}")))?
}

/// Wait for the whole generation. If the client goes away first, axum drops
/// this future and with it `generation`, which cancels the request.
async fn complete(
    engine: &EngineHandle,
    generation: GenerationStream,
    meta: ResponseMeta,
    parser: Option<ReplyParser>,
) -> Result<Response, ApiError> {
    let done = generation
        .collect()
        .await
        .map_err(|message| ApiError::generation_failed(message, !engine.is_accepting()))?;
    let (content, calls) = match parser {
        Some(parser) => {
            let reply = parser.parse_whole(&done.text);
            (reply.content, reply.calls)
        }
        None => (Some(done.text), Vec::new()),
    };
    let finish_reason = if calls.is_empty() {
        done.reason.openai()
    } else {
        TOOL_CALLS
    };
    let tool_calls =
        (!calls.is_empty()).then(|| calls.into_iter().map(tools::response_call).collect());
    let body = ChatCompletion {
        id: meta.id,
        object: "chat.completion",
        created: meta.created,
        model: meta.model,
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content,
                tool_calls,
            },
            logprobs: None,
            finish_reason,
        }],
        usage: done.usage.into(),
        system_fingerprint: meta.fingerprint,
    };
    Ok(Json(body).into_response())
}
