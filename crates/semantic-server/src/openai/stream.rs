//! The streaming form of a chat completion: SSE chunks, rendered for
//! [`crate::reply_stream`], which drives the generation.
//!
//! Sequence: a role chunk (sent at once, before prefill ends, so the client
//! sees headers and a first byte early), content chunks, a chunk carrying
//! `finish_reason`, a usage chunk when `include_usage`, then `[DONE]`. A
//! failure mid-stream becomes a `data: {"error": ...}` frame and the end.
//!
//! When tools may be called, each call becomes two `delta.tool_calls`
//! chunks (index, id, type and name; then the arguments), which the openai
//! SDKs' stream helpers assemble.

use axum::response::sse::Event;
use futures::Stream;
use semantic_domain::tools::ParsedCall;

use super::chat::{ResponseMeta, TOOL_CALLS};
use super::tools::response_call;
use super::types::{
    ChatCompletionChunk, ChunkChoice, Delta, FunctionDelta, ToolCallDelta, UsageBody,
};
use crate::error::ApiError;
use crate::generation::Submitted;
use crate::reply_stream::{self, Pending, StreamEnd, StreamFormat};
use crate::sse::{done_event, json_event};

/// Renders a reply as chat completion chunks.
struct ChunkFormat {
    meta: ResponseMeta,
    include_usage: bool,
    /// Tool calls streamed so far (the next call's `index`).
    calls_sent: u32,
}

/// The SSE events of one streaming chat completion.
pub fn events(
    submitted: Submitted,
    meta: ResponseMeta,
    include_usage: bool,
) -> impl Stream<Item = Event> + Send + 'static {
    let format = ChunkFormat {
        meta,
        include_usage,
        calls_sent: 0,
    };
    // OpenAI's stream has no idle event (the SSE keep-alive comment covers
    // proxies): the interval is never used.
    reply_stream::events(submitted, format, reply_stream::DEFAULT_IDLE_EVENT_AFTER)
}

impl StreamFormat for ChunkFormat {
    fn start(&mut self, _may_call: bool, out: &mut Pending) {
        let role = Delta {
            role: Some("assistant"),
            content: Some(String::new()),
            ..Delta::default()
        };
        self.push_choice(role, None, out);
    }

    fn text(&mut self, text: String, out: &mut Pending) {
        let delta = Delta {
            content: Some(text),
            ..Delta::default()
        };
        self.push_choice(delta, None, out);
    }

    /// A whole call as two deltas: its header, then its arguments.
    fn call(&mut self, call: ParsedCall, out: &mut Pending) {
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
            self.push_choice(delta, None, out);
        }
    }

    fn finish(&mut self, end: StreamEnd, out: &mut Pending) {
        let finish_reason = if end.made_calls {
            TOOL_CALLS
        } else {
            end.reason.openai()
        };
        self.push_choice(Delta::default(), Some(finish_reason), out);
        if self.include_usage {
            self.push_chunk(Vec::new(), Some(end.usage.into()), out);
        }
        out.push_back(done_event());
    }

    fn error(&self, error: &ApiError) -> Event {
        json_event(&error.envelope())
    }
}

impl ChunkFormat {
    fn push_choice(&self, delta: Delta, finish_reason: Option<&'static str>, out: &mut Pending) {
        let choice = ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        };
        self.push_chunk(vec![choice], None, out);
    }

    fn push_chunk(&self, choices: Vec<ChunkChoice>, usage: Option<UsageBody>, out: &mut Pending) {
        let chunk = ChatCompletionChunk {
            id: &self.meta.id,
            object: "chat.completion.chunk",
            created: self.meta.created,
            model: &self.meta.model,
            system_fingerprint: &self.meta.fingerprint,
            choices,
            usage: self.include_usage.then_some(usage),
        };
        out.push_back(json_event(&chunk));
    }
}
