//! Submitting a prepared prompt and waiting for its whole reply, the same
//! for every API family; each family only shapes the result (see
//! [`crate::reply_stream`] for the streamed form).

use semantic_domain::tools::{ParsedReply, ReplyParser};
use semantic_domain::{AgentKey, FinishReason, GenerateRequest, SamplingParams, TenantId, Usage};
use semantic_engine::{EngineHandle, GenerationStream};

use crate::error::{from_engine, ApiError, ParamNames};
use crate::prompt::Prepared;

/// A generation under way, and the parser that reads tool calls out of its
/// text (`None` when the request can make none).
pub struct Submitted {
    pub generation: GenerationStream,
    pub parser: Option<ReplyParser>,
}

/// Submit `prepared` for `tenant` (and its `agent`, if any) under its
/// tool-use grammar, with its phases traced. `names` names the fields of
/// engine errors in the family's terms.
pub fn submit(
    engine: &EngineHandle,
    prepared: Prepared,
    mut sampling: SamplingParams,
    (tenant, agent): (TenantId, Option<AgentKey>),
    names: impl Into<ParamNames>,
) -> Result<Submitted, ApiError> {
    let Prepared { tokens, tool_use } = prepared;
    sampling.grammar = tool_use.grammar;
    debug_assert!(agent.as_ref().is_none_or(|a| a.tenant == tenant));
    let request = GenerateRequest {
        prompt: tokens,
        sampling,
        tenant,
        agent: agent.map(|a| a.agent),
    };
    let mut generation = engine.submit(request).map_err(|e| from_engine(e, names))?;
    crate::telemetry::phases::trace(&mut generation);
    Ok(Submitted {
        generation,
        parser: tool_use.parser,
    })
}

/// A finished generation: why it ended, its token counts, and its text
/// split into content and tool calls.
#[derive(Debug)]
pub struct WholeReply {
    pub reason: FinishReason,
    pub usage: Usage,
    pub reply: ParsedReply,
    /// The whole reply exactly as generated.
    pub text: String,
}

/// Wait for the whole generation. If the client goes away first, axum drops
/// this future and with it the generation, which cancels the request.
/// Tool calls, when the request may make any, are read out of the text.
pub async fn whole_reply(
    engine: &EngineHandle,
    submitted: Submitted,
) -> Result<WholeReply, ApiError> {
    let done = submitted
        .generation
        .collect()
        .await
        .map_err(|message| ApiError::generation_failed(message, !engine.is_accepting()))?;
    let reply = match submitted.parser {
        Some(parser) => parser.parse_whole(&done.text),
        None => ParsedReply {
            content: Some(done.text.clone()),
            calls: Vec::new(),
        },
    };
    Ok(WholeReply {
        reason: done.reason,
        usage: done.usage,
        reply,
        text: done.text,
    })
}
