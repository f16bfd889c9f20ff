//! One generation of a session: a participant's messages rendered with
//! the model's template and submitted as its agent through the same path
//! as chat completions (`prompt::prepare`, `generation::submit`), its text
//! collected and, when the request streams, sent on as deltas.

use axum::http::StatusCode;
use axum::response::sse::Event;
use semantic_domain::chat::ChatMessage;
use semantic_domain::{
    AgentKey, FinishReason, GenerationEvent, Grammar, SamplingParams, TenantId, Usage,
};
use tokio::sync::mpsc;

use super::events;
use crate::error::{ApiError, ParamNames};
use crate::generation;
use crate::prompt::{self, Conversation};
use crate::state::AppState;

/// Field names of engine errors about a session's turn.
pub const NAMES: ParamNames = ParamNames {
    max_tokens: "sampling.max_tokens",
    stop: "sampling.stop",
    prompt: "transcript",
};

/// Where a streamed request's events go; nowhere for a whole answer.
pub struct Sink(Option<mpsc::Sender<Event>>);

impl Sink {
    pub fn none() -> Self {
        Self(None)
    }

    pub fn to(sender: mpsc::Sender<Event>) -> Self {
        Self(Some(sender))
    }

    /// Send `event`; an error when the client went away (which ends the
    /// work, and dropping the generation cancels it).
    pub async fn send(&self, event: Event) -> Result<(), ApiError> {
        match &self.0 {
            Some(sender) => sender.send(event).await.map_err(|_| client_gone()),
            None => Ok(()),
        }
    }

    /// Resolves when the client went away; never for a whole answer.
    async fn gone(&self) {
        match &self.0 {
            Some(sender) => sender.closed().await,
            None => std::future::pending().await,
        }
    }
}

fn client_gone() -> ApiError {
    ApiError::from_status(StatusCode::BAD_REQUEST, "the client closed the stream")
        .with_code("client_closed")
}

/// What every turn of one request shares.
pub struct TurnContext<'a> {
    pub state: &'a AppState,
    pub tenant: &'a TenantId,
    pub sink: &'a Sink,
}

/// One generation's outcome.
pub struct Generated {
    pub text: String,
    pub reason: FinishReason,
    pub usage: Usage,
    pub first_token_s: f64,
}

/// Render `messages` with the model's template, submit them as `agent`
/// and collect the reply, streaming its text as `speaker`'s deltas if the
/// request streams.
pub async fn generate(
    ctx: &TurnContext<'_>,
    messages: Vec<ChatMessage>,
    agent: AgentKey,
    sampling: SamplingParams,
    grammar: Option<Grammar>,
    speaker: Option<&str>,
) -> Result<Generated, ApiError> {
    let engine = &ctx.state.engine;
    ctx.state.gateway.rate_limits.check_agent(Some(&agent))?;
    let conversation = Conversation {
        messages,
        ..Conversation::default()
    };
    // No tools in a session: the tool-use error cannot happen.
    let tool_error = |e: semantic_domain::tools::ToolUseError| {
        ApiError::invalid_request(e.to_string()).with_param("transcript")
    };
    let mut prepared = prompt::prepare(engine, conversation, NAMES, tool_error).await?;
    if grammar.is_some() {
        prepared.tool_use.grammar = grammar;
    }
    let submitted = generation::submit(
        engine,
        prepared,
        sampling,
        (ctx.tenant.clone(), Some(agent)),
        NAMES,
    )?;
    let mut stream = submitted.generation;
    let mut text = String::new();
    loop {
        let event = tokio::select! {
            event = stream.next() => event,
            () = ctx.sink.gone() => return Err(client_gone()),
        };
        match event {
            Some(
                GenerationEvent::Token { text: piece, .. } | GenerationEvent::Text { text: piece },
            ) => {
                if piece.is_empty() {
                    continue;
                }
                text.push_str(&piece);
                if let Some(speaker) = speaker {
                    ctx.sink.send(events::delta(speaker, &piece)).await?;
                }
            }
            Some(GenerationEvent::Finished {
                reason,
                usage,
                timings,
            }) => {
                return Ok(Generated {
                    text,
                    reason,
                    usage,
                    first_token_s: timings.first_token,
                })
            }
            Some(GenerationEvent::Failed { message }) => {
                return Err(ApiError::generation_failed(message, !engine.is_accepting()))
            }
            None => {
                return Err(ApiError::generation_failed(
                    "the engine dropped the request",
                    !engine.is_accepting(),
                ))
            }
        }
    }
}
