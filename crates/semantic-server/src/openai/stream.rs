//! The streaming form of a chat completion: engine events to SSE chunks.
//!
//! Sequence: a role chunk (sent at once, before prefill ends, so the client
//! sees headers and a first byte early), content chunks, a chunk carrying
//! `finish_reason`, a usage chunk when `include_usage`, then `[DONE]`. A
//! failure mid-stream becomes a `data: {"error": ...}` frame and the end.

use std::collections::VecDeque;

use axum::response::sse::Event;
use futures::Stream;
use semantic_domain::GenerationEvent;
use semantic_engine::GenerationStream;

use super::chat::ResponseMeta;
use super::types::{ChatCompletionChunk, ChunkChoice, Delta, UsageBody};
use crate::error::ApiError;
use crate::sse::{done_event, json_event};

/// Engine events in, SSE events out. Owns the engine stream, so dropping
/// this (the client went away) cancels the generation.
struct ChunkStream {
    /// `None` once the generation ended; dropped then to free it at once.
    generation: Option<GenerationStream>,
    meta: ResponseMeta,
    include_usage: bool,
    pending: VecDeque<Event>,
}

/// The SSE events of one streaming chat completion.
pub fn events(
    generation: GenerationStream,
    meta: ResponseMeta,
    include_usage: bool,
) -> impl Stream<Item = Event> + Send + 'static {
    let mut state = ChunkStream {
        generation: Some(generation),
        meta,
        include_usage,
        pending: VecDeque::new(),
    };
    let role = Delta {
        role: Some("assistant"),
        content: Some(String::new()),
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
                if !text.is_empty() {
                    let delta = Delta {
                        role: None,
                        content: Some(text),
                    };
                    self.push_choice(delta, None);
                }
            }
            Some(GenerationEvent::Finished { reason, usage, .. }) => {
                self.generation = None;
                self.push_choice(Delta::default(), Some(reason.openai()));
                if self.include_usage {
                    self.push_chunk(Vec::new(), Some(usage.into()));
                }
                self.pending.push_back(done_event());
            }
            Some(GenerationEvent::Failed { message }) => self.fail(message),
            None => self.fail("the engine dropped the request".into()),
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
