//! `POST /v1/chat/completions`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use semantic_domain::GenerateRequest;
use semantic_engine::{EngineHandle, GenerationStream};

use super::convert;
use super::stream;
use super::types::{AssistantMessage, ChatCompletion, ChatCompletionRequest, Choice};
use crate::error::{from_engine, ApiError};
use crate::extract::ApiJson;
use crate::state::{now_unix, SharedState};
use crate::{prompt, sse};

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
    let conversation = prompt::Conversation::plain(plan.messages);
    let prompt = prompt::tokenize(&state.engine, conversation, field).await?;
    let mut generation = state
        .engine
        .submit(GenerateRequest {
            prompt,
            sampling: plan.sampling,
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
        )))
    } else {
        complete(&state.engine, generation, meta).await
    }
}

/// Wait for the whole generation. If the client goes away first, axum drops
/// this future and with it `generation`, which cancels the request.
async fn complete(
    engine: &EngineHandle,
    generation: GenerationStream,
    meta: ResponseMeta,
) -> Result<Response, ApiError> {
    let done = generation
        .collect()
        .await
        .map_err(|message| ApiError::generation_failed(message, !engine.is_accepting()))?;
    let body = ChatCompletion {
        id: meta.id,
        object: "chat.completion",
        created: meta.created,
        model: meta.model,
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: done.text,
            },
            logprobs: None,
            finish_reason: done.reason.openai(),
        }],
        usage: done.usage.into(),
        system_fingerprint: meta.fingerprint,
    };
    Ok(Json(body).into_response())
}
