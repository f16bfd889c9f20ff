//! `POST /v1/chat/completions`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use semantic_domain::tools::ReplyParser;
use semantic_domain::GenerateRequest;
use semantic_engine::{EngineHandle, GenerationStream};

use super::convert;
use super::stream;
use super::tools;
use super::types::{AssistantMessage, ChatCompletion, ChatCompletionRequest, Choice};
use crate::error::{from_engine, ApiError};
use crate::extract::ApiJson;
use crate::prompt::{self, Conversation, Prepared};
use crate::sse;
use crate::state::{now_unix, SharedState};

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
    let conversation = Conversation {
        messages: plan.messages,
        tools: plan.tools,
        prefill: None,
    };
    let Prepared {
        tokens: prompt,
        tool_use,
    } = prompt::prepare(&state.engine, conversation, field, tools::api_error).await?;
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
