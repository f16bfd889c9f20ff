//! The streaming form of a message: engine events to Anthropic's SSE events.
//!
//! Sequence, each with its `event:` name: `message_start` (sent at once,
//! before prefill ends, so the client sees headers and a first byte early;
//! its usage is provisional), `content_block_start` of the text block
//! (index 0), `ping`, `content_block_delta` per piece of text,
//! `content_block_stop`, `message_delta` (stop reason and the final usage,
//! which clients take over the provisional one) and `message_stop`. A
//! failure mid-stream becomes an `error` event and the end.
//!
//! When tools may be called, text goes through a [`ReplyParser`] first
//! (text that could open `<tool_call>` waits until it cannot), the text
//! block opens only when there is text, and each call becomes a block of
//! its own: `content_block_start` with `{"type": "tool_use", "id", "name",
//! "input": {}}`, one `input_json_delta` holding the input's JSON, and
//! `content_block_stop`; `message_delta` then says `stop_reason: "tool_use"`.
//! A message always has at least one block (an empty text block if need be).

use std::collections::VecDeque;

use axum::response::sse::Event;
use futures::Stream;
use semantic_domain::tools::{ParsedCall, ReplyEvent, ReplyParser};
use semantic_domain::GenerationEvent;
use semantic_engine::GenerationStream;
use serde_json::{Map, Value};

use super::envelope;
use super::messages::MessageMeta;
use super::tools::tool_use_id;
use super::types::{
    stop_reason, BlockDelta, MessageDelta, OutputBlock, StreamEvent, UsageBody, TOOL_USE,
};
use crate::error::ApiError;
use crate::sse::named_event;

/// Engine events in, SSE events out. Owns the engine stream, so dropping
/// this (the client went away) cancels the generation.
struct MessageStream {
    /// `None` once the generation ended; dropped then to free it at once.
    generation: Option<GenerationStream>,
    meta: MessageMeta,
    /// Reads tool calls out of the text; `None` when none can be made.
    parser: Option<ReplyParser>,
    /// The index the next content block gets (the number opened so far).
    next_index: u32,
    /// The index of the text block being streamed, if one is open.
    open_text: Option<u32>,
    pending: VecDeque<Event>,
}

/// The SSE events of one streaming message.
pub fn events(
    generation: GenerationStream,
    meta: MessageMeta,
    parser: Option<ReplyParser>,
) -> impl Stream<Item = Event> + Send + 'static {
    let mut state = MessageStream {
        generation: Some(generation),
        meta,
        parser,
        next_index: 0,
        open_text: None,
        pending: VecDeque::new(),
    };
    state.start();
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

impl MessageStream {
    /// `message_start`; without tools the text block opens at once, as
    /// Anthropic's does, then `ping`.
    fn start(&mut self) {
        let usage = UsageBody::provisional(self.meta.prompt_tokens);
        let message = self.meta.body(Vec::new(), (None, None), usage);
        let start = StreamEvent::MessageStart { message };
        let event = named_event(start.name(), &start);
        self.pending.push_back(event);
        if self.parser.is_none() {
            self.open_text();
        }
        self.push(StreamEvent::Ping);
    }

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
                let (mut stop_reason, mut stop_sequence) = stop_reason(reason);
                if let Some(mut parser) = self.parser.take() {
                    self.push_reply(parser.finish());
                    if parser.calls() > 0 {
                        (stop_reason, stop_sequence) = (TOOL_USE, None);
                    }
                }
                if self.next_index == 0 {
                    self.open_text();
                }
                self.close_text();
                self.push(StreamEvent::MessageDelta {
                    delta: MessageDelta {
                        stop_reason,
                        stop_sequence,
                    },
                    usage: UsageBody::new(usage, self.meta.keeps_kv),
                });
                self.push(StreamEvent::MessageStop);
            }
            Some(GenerationEvent::Failed { message }) => self.fail(message),
            None => self.fail("the engine dropped the request".into()),
        }
    }

    fn push_reply(&mut self, events: Vec<ReplyEvent>) {
        for event in events {
            match event {
                ReplyEvent::Text(text) => self.push_text(text),
                ReplyEvent::Call(call) => self.push_call(call),
            }
        }
    }

    /// A piece of text, in the open text block (opened if need be).
    fn push_text(&mut self, text: String) {
        let index = match self.open_text {
            Some(index) => index,
            None => self.open_text(),
        };
        self.push(StreamEvent::ContentBlockDelta {
            index,
            delta: BlockDelta::TextDelta { text },
        });
    }

    /// A whole call as one `tool_use` block: start (empty input), the
    /// input's JSON, stop. Text before it ends its own block first.
    fn push_call(&mut self, call: ParsedCall) {
        self.close_text();
        let index = self.next_block();
        self.push(StreamEvent::ContentBlockStart {
            index,
            content_block: OutputBlock::ToolUse {
                id: tool_use_id(),
                name: call.name,
                input: Value::Object(Map::new()),
            },
        });
        self.push(StreamEvent::ContentBlockDelta {
            index,
            delta: BlockDelta::InputJsonDelta {
                partial_json: call.arguments.to_string(),
            },
        });
        self.push(StreamEvent::ContentBlockStop { index });
    }

    /// Open an empty text block; returns its index.
    fn open_text(&mut self) -> u32 {
        let index = self.next_block();
        self.open_text = Some(index);
        self.push(StreamEvent::ContentBlockStart {
            index,
            content_block: OutputBlock::Text {
                text: String::new(),
            },
        });
        index
    }

    fn close_text(&mut self) {
        if let Some(index) = self.open_text.take() {
            self.push(StreamEvent::ContentBlockStop { index });
        }
    }

    fn next_block(&mut self) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        index
    }

    fn fail(&mut self, message: String) {
        self.generation = None;
        tracing::warn!(error = %message, "generation failed mid-stream");
        let error = ApiError::internal(message).with_code("generation_failed");
        let event = named_event("error", &envelope::envelope(&error));
        self.pending.push_back(event);
    }

    fn push(&mut self, event: StreamEvent<'_>) {
        self.pending.push_back(named_event(event.name(), &event));
    }
}
