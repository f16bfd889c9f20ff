//! The streaming form of a chat completion: engine events to SSE chunks.
//!
//! Sequence: a role chunk (sent at once, before prefill ends, so the client
//! sees headers and a first byte early), content chunks, a chunk carrying
//! `finish_reason`, a usage chunk when `include_usage`, then `[DONE]`. A
//! failure mid-stream becomes a `data: {"error": ...}` frame and the end.
//!
//! When tools may be called, text goes through a [`ReplyParser`] first:
//! text that could open `<tool_call>` waits until it cannot, and each call
//! becomes two `delta.tool_calls` chunks (index, id, type and name; then
//! the arguments), which the openai SDKs' stream helpers assemble.

use std::collections::VecDeque;

use axum::response::sse::Event;
use futures::Stream;
use semantic_domain::tools::{ParsedCall, ReplyEvent, ReplyParser};
use semantic_domain::GenerationEvent;
use semantic_engine::GenerationStream;

use super::chat::{ResponseMeta, TOOL_CALLS};
use super::tools::response_call;
use super::types::{
    ChatCompletionChunk, ChunkChoice, Delta, FunctionDelta, ToolCallDelta, UsageBody,
};
use crate::error::ApiError;
use crate::sse::{done_event, json_event};

/// Engine events in, SSE events out. Owns the engine stream, so dropping
/// this (the client went away) cancels the generation.
struct ChunkStream {
    /// `None` once the generation ended; dropped then to free it at once.
    generation: Option<GenerationStream>,
    meta: ResponseMeta,
    include_usage: bool,
    /// Reads tool calls out of the text; `None` when none can be made.
    parser: Option<ReplyParser>,
    /// Tool calls streamed so far (the next call's `index`).
    calls_sent: u32,
    pending: VecDeque<Event>,
}

/// The SSE events of one streaming chat completion.
pub fn events(
    generation: GenerationStream,
    meta: ResponseMeta,
    include_usage: bool,
    parser: Option<ReplyParser>,
) -> impl Stream<Item = Event> + Send + 'static {
    let mut state = ChunkStream {
        generation: Some(generation),
        meta,
        include_usage,
        parser,
        calls_sent: 0,
        pending: VecDeque::new(),
    };
    let role = Delta {
        role: Some("assistant"),
        content: Some(String::new()),
        ..Delta::default()
    };
    state.push_choice(role, None);
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(event) = s.pending.pop_front() {
                return Some((event, s));
            }
            let next = s.generation.as_mut()?.next().await;
            s.on_event(next);
        }
    })
}

impl ChunkStream {
    fn on_event(&mut self, event: Option<GenerationEvent>) {
        match event {
            Some(GenerationEvent::Token { text, .. } | GenerationEvent::Text { text }) => {
                if text.is_empty() {
                    return;
                }
                match self.parser.as_mut() {
                    Some(parser) => {
                        let events = parser.push(&text);
                        self.push_reply(events);
                    }
                    None => self.push_text(text),
                }
            }
            Some(GenerationEvent::Finished { reason, usage, .. }) => {
                self.generation = None;
                let mut finish_reason = reason.openai();
                if let Some(mut parser) = self.parser.take() {
                    self.push_reply(parser.finish());
                    if parser.calls() > 0 {
                        finish_reason = TOOL_CALLS;
                    }
                }
                self.push_choice(Delta::default(), Some(finish_reason));
                if self.include_usage {
                    self.push_chunk(Vec::new(), Some(usage.into()));
                }
                self.pending.push_back(done_event());
            }
            Some(GenerationEvent::Failed { message }) => self.fail(message),
            None => self.fail("the engine dropped the request".into()),
        }
    }

    fn push_text(&mut self, text: String) {
        let delta = Delta {
            content: Some(text),
            ..Delta::default()
        };
        self.push_choice(delta, None);
    }

    fn push_reply(&mut self, events: Vec<ReplyEvent>) {
        for event in events {
            match event {
                ReplyEvent::Text(text) => self.push_text(text),
                ReplyEvent::Call(call) => self.push_call(call),
            }
        }
    }

    /// A whole call as two deltas: its header, then its arguments.
    fn push_call(&mut self, call: ParsedCall) {
        let index = self.calls_sent;
        self.calls_sent += 1;
        let call = response_call(call);
        let header = ToolCallDelta {
            index,
            id: Some(call.id),
            kind: Some(call.kind),
            function: FunctionDelta {
                name: Some(call.function.name),
                arguments: String::new(),
            },
        };
        let arguments = ToolCallDelta {
            index,
            id: None,
            kind: None,
            function: FunctionDelta {
                name: None,
                arguments: call.function.arguments,
            },
        };
        for piece in [header, arguments] {
            let delta = Delta {
                tool_calls: Some(vec![piece]),
                ..Delta::default()
            };
            self.push_choice(delta, None);
        }
    }

    fn fail(&mut self, message: String) {
        self.generation = None;
        tracing::warn!(error = %message, "generation failed mid-stream");
        let error = ApiError::internal(message).with_code("generation_failed");
        self.pending.push_back(json_event(&error.envelope()));
    }

    fn push_choice(&mut self, delta: Delta, finish_reason: Option<&'static str>) {
        let choice = ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        };
        self.push_chunk(vec![choice], None);
    }

    fn push_chunk(&mut self, choices: Vec<ChunkChoice>, usage: Option<UsageBody>) {
        let chunk = ChatCompletionChunk {
            id: &self.meta.id,
            object: "chat.completion.chunk",
            created: self.meta.created,
            model: &self.meta.model,
            system_fingerprint: &self.meta.fingerprint,
            choices,
            usage: self.include_usage.then_some(usage),
        };
        self.pending.push_back(json_event(&chunk));
    }
}
