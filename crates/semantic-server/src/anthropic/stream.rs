//! The streaming form of a message: engine events to Anthropic's SSE events.
//!
//! Sequence, each with its `event:` name: `message_start` (sent at once,
//! before prefill ends, so the client sees headers and a first byte early;
//! its usage is provisional), `content_block_start`, `ping`,
//! `content_block_delta` per piece of text, `content_block_stop`,
//! `message_delta` (stop reason and the final usage, which clients take
//! over the provisional one) and `message_stop`. A failure mid-stream
//! becomes an `error` event and the end.

use std::collections::VecDeque;

use axum::response::sse::Event;
use futures::Stream;
use semantic_domain::GenerationEvent;
use semantic_engine::GenerationStream;

use super::envelope;
use super::messages::MessageMeta;
use super::types::{stop_reason, BlockDelta, MessageDelta, OutputBlock, StreamEvent, UsageBody};
use crate::error::ApiError;
use crate::sse::named_event;

/// The one content block: text (tool-use blocks will follow it as index 1+).
const TEXT_BLOCK: u32 = 0;

/// Engine events in, SSE events out. Owns the engine stream, so dropping
/// this (the client went away) cancels the generation.
struct MessageStream {
    /// `None` once the generation ended; dropped then to free it at once.
    generation: Option<GenerationStream>,
    meta: MessageMeta,
    pending: VecDeque<Event>,
}

/// The SSE events of one streaming message.
pub fn events(
    generation: GenerationStream,
    meta: MessageMeta,
) -> impl Stream<Item = Event> + Send + 'static {
    let mut state = MessageStream {
        generation: Some(generation),
        meta,
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
    fn start(&mut self) {
        let usage = UsageBody::provisional(self.meta.prompt_tokens);
        let message = self.meta.body(Vec::new(), (None, None), usage);
        let start = StreamEvent::MessageStart { message };
        let event = named_event(start.name(), &start);
        self.pending.push_back(event);
        self.push(StreamEvent::ContentBlockStart {
            index: TEXT_BLOCK,
            content_block: OutputBlock::Text {
                text: String::new(),
            },
        });
        self.push(StreamEvent::Ping);
    }

    fn on_event(&mut self, event: Option<GenerationEvent>) {
        match event {
            Some(GenerationEvent::Token { text, .. } | GenerationEvent::Text { text }) => {
                if !text.is_empty() {
                    self.push(StreamEvent::ContentBlockDelta {
                        index: TEXT_BLOCK,
                        delta: BlockDelta::TextDelta { text },
                    });
                }
            }
            Some(GenerationEvent::Finished { reason, usage, .. }) => {
                self.generation = None;
                self.push(StreamEvent::ContentBlockStop { index: TEXT_BLOCK });
                let (stop_reason, stop_sequence) = stop_reason(reason);
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
