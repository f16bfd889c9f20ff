//! The streamed form of a reply, for any API family: engine events in, SSE
//! events out. This module drives the generation and reads tool calls out
//! of its text; a [`StreamFormat`] renders the pieces in its family's shape.
//!
//! When tools may be called, text goes through the [`ReplyParser`] first:
//! text that could open `<tool_call>` waits until it cannot, and a call
//! reaches the format whole.

use std::collections::VecDeque;
use std::time::Duration;

use axum::response::sse::Event;
use futures::Stream;
use semantic_domain::tools::{ParsedCall, ReplyEvent, ReplyParser};
use semantic_domain::{FinishReason, GenerationEvent, Usage};
use semantic_engine::GenerationStream;

use crate::error::ApiError;
use crate::generation::Submitted;

/// Default of `--stream-ping-interval`: how long a stream may go without an
/// event before the format's idle event (Anthropic's `ping`) is sent.
/// Claude Code counts a `ping` as liveness only 30 times in a row and then
/// allows 5 minutes more, so a longer interval covers a longer prefill
/// (30 x 15 s + 5 min = 12.5 min); proxies that cut idle connections are
/// kept busy by the SSE comment keep-alive every [`crate::sse::KEEP_ALIVE`]
/// regardless.
pub const DEFAULT_IDLE_EVENT_AFTER: Duration = Duration::from_secs(15);

/// SSE events rendered and waiting to be sent, in order.
pub type Pending = VecDeque<Event>;

/// How the generation ended, as a format needs it for its last events.
#[derive(Debug)]
pub struct StreamEnd {
    pub reason: FinishReason,
    pub usage: Usage,
    /// The reply held tool calls (the family reports its tool-use reason).
    pub made_calls: bool,
    /// The whole reply exactly as generated (tool calls as the model wrote
    /// them), for a family that keeps it.
    pub text: String,
}

/// One API family's SSE rendering of a streamed reply. Each method appends
/// the events it renders to `out`.
pub trait StreamFormat: Send + 'static {
    /// The first events, sent at once, before prefill ends, so the client
    /// sees headers and a first byte early. `may_call` says whether tool
    /// calls can follow.
    fn start(&mut self, may_call: bool, out: &mut Pending);
    /// A piece of content text.
    fn text(&mut self, text: String, out: &mut Pending);
    /// A whole tool call.
    fn call(&mut self, call: ParsedCall, out: &mut Pending);
    /// The end of a reply that finished; no event follows these.
    fn finish(&mut self, end: StreamEnd, out: &mut Pending);
    /// The event that ends a stream whose generation failed mid-way.
    fn error(&self, error: &ApiError) -> Event;
    /// The event sent after the idle interval without one, if the
    /// family has such an event (OpenAI's has none).
    fn idle(&self) -> Option<Event> {
        None
    }
}

/// Engine events in, SSE events out. Owns the engine stream, so dropping
/// this (the client went away) cancels the generation.
struct ReplyStream<F> {
    /// `None` once the generation ended; dropped then to free it at once.
    generation: Option<GenerationStream>,
    /// Reads tool calls out of the text; `None` when none can be made.
    parser: Option<ReplyParser>,
    format: F,
    pending: Pending,
    /// Every piece of text generated so far, as generated.
    text: String,
}

/// The SSE events of one streamed reply, rendered by `format`, with the
/// format's idle event after each `idle_after` without another.
pub fn events<F: StreamFormat>(
    submitted: Submitted,
    mut format: F,
    idle_after: Duration,
) -> impl Stream<Item = Event> + Send + 'static {
    let mut pending = Pending::new();
    format.start(submitted.parser.is_some(), &mut pending);
    // A family without an idle event (OpenAI's) waits without waking.
    let has_idle_event = format.idle().is_some();
    let state = ReplyStream {
        generation: Some(submitted.generation),
        parser: submitted.parser,
        format,
        pending,
        text: String::new(),
    };
    futures::stream::unfold(state, move |mut s| async move {
        loop {
            if let Some(event) = s.pending.pop_front() {
                return Some((event, s));
            }
            let generation = s.generation.as_mut()?;
            if !has_idle_event {
                let next = generation.next().await;
                s.on_event(next);
                continue;
            }
            // `recv` is cancel-safe: a timeout loses no event.
            match tokio::time::timeout(idle_after, generation.next()).await {
                Ok(next) => s.on_event(next),
                Err(_) => s.pending.extend(s.format.idle()),
            }
        }
    })
}

impl<F: StreamFormat> ReplyStream<F> {
    fn on_event(&mut self, event: Option<GenerationEvent>) {
        match event {
            Some(GenerationEvent::Token { text, .. } | GenerationEvent::Text { text }) => {
                self.on_text(text);
            }
            Some(GenerationEvent::Finished { reason, usage, .. }) => self.finish(reason, usage),
            Some(GenerationEvent::Failed { message }) => self.fail(message),
            None => self.fail("the engine dropped the request".into()),
        }
    }

    fn on_text(&mut self, text: String) {
        // Tokens may add no text (an incomplete character, a held stop string).
        if text.is_empty() {
            return;
        }
        self.text.push_str(&text);
        match self.parser.as_mut() {
            Some(parser) => {
                let events = parser.push(&text);
                self.push_reply(events);
            }
            None => self.format.text(text, &mut self.pending),
        }
    }

    /// Text the parser held back goes out before the end.
    fn finish(&mut self, reason: FinishReason, usage: Usage) {
        self.generation = None;
        let mut made_calls = false;
        if let Some(mut parser) = self.parser.take() {
            self.push_reply(parser.finish());
            made_calls = parser.calls() > 0;
        }
        let end = StreamEnd {
            reason,
            usage,
            made_calls,
            text: std::mem::take(&mut self.text),
        };
        self.format.finish(end, &mut self.pending);
    }

    fn push_reply(&mut self, events: Vec<ReplyEvent>) {
        for event in events {
            match event {
                ReplyEvent::Text(text) => self.format.text(text, &mut self.pending),
                ReplyEvent::Call(call) => self.format.call(call, &mut self.pending),
            }
        }
    }

    fn fail(&mut self, message: String) {
        self.generation = None;
        tracing::warn!(error = %message, "generation failed mid-stream");
        let error = ApiError::internal(message).with_code("generation_failed");
        self.pending.push_back(self.format.error(&error));
    }
}
