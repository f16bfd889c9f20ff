//! `POST /v1/chat/completions`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::convert;
use super::stream;
use super::tools;
use super::types::{AssistantMessage, ChatCompletion, ChatCompletionRequest, Choice};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::generation::{self, WholeReply};
use crate::prompt::{self, Conversation};
use crate::sse;
use crate::state::{now_unix, SharedState};
use crate::tenant::CallerTenant;

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
    tenant: CallerTenant,
    ApiJson(request): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let plan = convert::plan(&state, &headers, tenant, request)?;
    let field = plan.max_tokens_field;
    let conversation = Conversation {
        messages: plan.messages,
        tools: plan.tools,
        prefill: None,
    };
    let prepared = prompt::prepare(&state.engine, conversation, field, tools::api_error).await?;
    let submitted = generation::submit(
        &state.engine,
        prepared,
        plan.sampling,
        (plan.tenant, plan.agent),
        field,
    )?;
    let meta = ResponseMeta {
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        created: now_unix(),
        model: state.model_id.clone(),
        fingerprint: state.fingerprint.clone(),
    };
    let request = submitted.generation.id();
    tracing::debug!(%request, stream = plan.stream, "chat completion submitted");
    if plan.stream {
        Ok(sse::response(stream::events(
            submitted,
            meta,
            plan.include_usage,
        )))
    } else {
        let whole = generation::whole_reply(&state.engine, submitted).await?;
        Ok(Json(completion(whole, meta)).into_response())
    }
}

/// The whole completion: `finish_reason` is `tool_calls` when calls were made.
fn completion(whole: WholeReply, meta: ResponseMeta) -> ChatCompletion {
    let calls = whole.reply.calls;
    let finish_reason = if calls.is_empty() {
        whole.reason.openai()
    } else {
        TOOL_CALLS
    };
    let tool_calls =
        (!calls.is_empty()).then(|| calls.into_iter().map(tools::response_call).collect());
    ChatCompletion {
        id: meta.id,
        object: "chat.completion",
        created: meta.created,
        model: meta.model,
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: whole.reply.content,
                tool_calls,
            },
            logprobs: None,
            finish_reason,
        }],
        usage: whole.usage.into(),
        system_fingerprint: meta.fingerprint,
    }
}
