//! The streaming form of a message: Anthropic's SSE events, rendered for
//! [`crate::reply_stream`], which drives the generation.
//!
//! Sequence, each with its `event:` name: `message_start` (sent at once,
//! before prefill ends, so the client sees headers and a first byte early;
//! its usage is provisional), `content_block_start` of the text block
//! (index 0), `ping`, `content_block_delta` per piece of text,
//! `content_block_stop`, `message_delta` (stop reason and the final usage,
//! which clients take over the provisional one) and `message_stop`. A
//! failure mid-stream becomes an `error` event and the end. While no event
//! is due (waiting in the queue, or a long prefill: 20K tokens take minutes
//! on a CPU), a `ping` event goes out every `--stream-ping-interval`
//! (default [`crate::reply_stream::DEFAULT_IDLE_EVENT_AFTER`]): Claude Code
//! aborts a stream that sends no event for 5 minutes, and a comment (the
//! SSE keep-alive) is not an event.
//!
//! When tools may be called, the text block opens only when there is text,
//! and each call becomes a block of its own: `content_block_start` with
//! `{"type": "tool_use", "id", "name", "input": {}}`, one `input_json_delta`
//! holding the input's JSON, and `content_block_stop`; `message_delta` then
//! says `stop_reason: "tool_use"`. A message always has at least one block
//! (an empty text block if need be).

use std::time::Duration;

use axum::response::sse::Event;
use futures::Stream;
use semantic_domain::tools::ParsedCall;
use serde_json::{Map, Value};

use super::envelope;
use super::messages::MessageMeta;
use super::tools::tool_use_id;
use super::types::{
    stop_reason, BlockDelta, MessageDelta, OutputBlock, StreamEvent, UsageBody, TOOL_USE,
};
use crate::error::ApiError;
use crate::generation::Submitted;
use crate::reply_stream::{self, Pending, StreamEnd, StreamFormat};
use crate::sse::named_event;

/// Renders a reply as Anthropic's content blocks and message events.
struct MessageFormat {
    meta: MessageMeta,
    /// The index the next content block gets (the number opened so far).
    next_index: u32,
    /// The index of the text block being streamed, if one is open.
    open_text: Option<u32>,
}

/// The SSE events of one streaming message, with a `ping` after each
/// `ping_interval` without another event.
pub fn events(
    submitted: Submitted,
    meta: MessageMeta,
    ping_interval: Duration,
) -> impl Stream<Item = Event> + Send + 'static {
    let format = MessageFormat {
        meta,
        next_index: 0,
        open_text: None,
    };
    reply_stream::events(submitted, format, ping_interval)
}

impl StreamFormat for MessageFormat {
    /// `message_start`; without tools the text block opens at once, as
    /// Anthropic's does, then `ping`.
    fn start(&mut self, may_call: bool, out: &mut Pending) {
        let usage = UsageBody::provisional(self.meta.prompt_tokens);
        let message = self.meta.body(Vec::new(), (None, None), usage);
        push(out, StreamEvent::MessageStart { message });
        if !may_call {
            self.open_text(out);
        }
        push(out, StreamEvent::Ping);
    }

    /// A piece of text, in the open text block (opened if need be).
    fn text(&mut self, text: String, out: &mut Pending) {
        let index = match self.open_text {
            Some(index) => index,
            None => self.open_text(out),
        };
        let delta = BlockDelta::TextDelta { text };
        push(out, StreamEvent::ContentBlockDelta { index, delta });
    }

    /// A whole call as one `tool_use` block: start (empty input), the
    /// input's JSON, stop. Text before it ends its own block first.
    fn call(&mut self, call: ParsedCall, out: &mut Pending) {
        self.close_text(out);
        let index = self.next_block();
        let content_block = OutputBlock::ToolUse {
            id: tool_use_id(),
            name: call.name,
            input: Value::Object(Map::new()),
        };
        push(
            out,
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            },
        );
        let delta = BlockDelta::InputJsonDelta {
            partial_json: call.arguments.to_string(),
        };
        push(out, StreamEvent::ContentBlockDelta { index, delta });
        push(out, StreamEvent::ContentBlockStop { index });
    }

    fn finish(&mut self, end: StreamEnd, out: &mut Pending) {
        let (stop_reason, stop_sequence) = if end.made_calls {
            (TOOL_USE, None)
        } else {
            stop_reason(end.reason)
        };
        if self.next_index == 0 {
            self.open_text(out);
        }
        self.close_text(out);
        let delta = MessageDelta {
            stop_reason,
            stop_sequence,
        };
        let usage = UsageBody::new(end.usage, self.meta.keeps_kv);
        push(out, StreamEvent::MessageDelta { delta, usage });
        push(out, StreamEvent::MessageStop);
    }

    fn error(&self, error: &ApiError) -> Event {
        named_event("error", &envelope::envelope(error))
    }

    fn idle(&self) -> Option<Event> {
        Some(render(&StreamEvent::Ping))
    }
}

impl MessageFormat {
    /// Open an empty text block; returns its index.
    fn open_text(&mut self, out: &mut Pending) -> u32 {
        let index = self.next_block();
        self.open_text = Some(index);
        let content_block = OutputBlock::Text {
            text: String::new(),
        };
        push(
            out,
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            },
        );
        index
    }

    fn close_text(&mut self, out: &mut Pending) {
        if let Some(index) = self.open_text.take() {
            push(out, StreamEvent::ContentBlockStop { index });
        }
    }

    fn next_block(&mut self) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        index
    }
}

/// Queue `event` under its own name.
fn push(out: &mut Pending, event: StreamEvent<'_>) {
    out.push_back(render(&event));
}

/// `event` as an SSE event under its own name.
fn render(event: &StreamEvent<'_>) -> Event {
    named_event(event.name(), event)
}
