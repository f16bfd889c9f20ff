//! `POST /v1/messages`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::types::{stop_reason, MessageBody, MessagesRequest, OutputBlock, UsageBody, TOOL_USE};
use super::{convert, stream, tools};
use crate::error::{ApiError, ParamNames};
use crate::extract::ApiJson;
use crate::generation::{self, WholeReply};
use crate::sse;
use crate::state::SharedState;
use crate::tenant::CallerTenant;

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
    tenant: CallerTenant,
    ApiJson(request): ApiJson<MessagesRequest>,
) -> Result<Response, ApiError> {
    let plan = convert::plan(&state, &headers, tenant, request)?;
    let prepared = convert::prepare(&state.engine, plan.conversation).await?;
    let meta = MessageMeta {
        id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
        model: state.model_id.clone(),
        prompt_tokens: u32::try_from(prepared.tokens.len()).unwrap_or(u32::MAX),
        keeps_kv: plan.agent.is_some(),
    };
    let names = ParamNames::ANTHROPIC;
    let submitted = generation::submit(
        &state.engine,
        prepared,
        plan.sampling,
        (plan.tenant, plan.agent),
        names,
    )?;
    let request = submitted.generation.id();
    tracing::debug!(%request, stream = plan.stream, "message submitted");
    if plan.stream {
        let ping = state.gateway.stream_ping_interval;
        Ok(sse::response(stream::events(submitted, meta, ping)))
    } else {
        let whole = generation::whole_reply(&state.engine, submitted).await?;
        Ok(Json(message(whole, &meta)).into_response())
    }
}

/// The whole message: `stop_reason` is `tool_use` when calls were made.
fn message(whole: WholeReply, meta: &MessageMeta) -> MessageBody<'_> {
    let (reason, sequence) = if whole.reply.calls.is_empty() {
        stop_reason(whole.reason)
    } else {
        (TOOL_USE, None)
    };
    let content = tools::content_blocks(whole.reply);
    let usage = UsageBody::new(whole.usage, meta.keeps_kv);
    meta.body(content, (Some(reason), sequence), usage)
}
