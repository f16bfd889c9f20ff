//! The caller's end of one generation.

use std::time::{Duration, Instant};

use semantic_domain::generation::Timings;
use semantic_domain::{FinishReason, GenerationEvent, RequestId, TokenId, Usage};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;

/// Called once with the `Finished` event's usage and timings as it passes.
pub type FinishHook = Box<dyn FnOnce(&Usage, &Timings) + Send>;

/// When an agent's finished turn was handed to persistence: the snapshot
/// of its KV on the engine thread and the hand-off to the writer thread
/// (the file write follows on that thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PersistReport {
    pub started: Instant,
    pub duration: Duration,
    pub bytes: u64,
}

pub(crate) type PersistReportSender = oneshot::Sender<PersistReport>;

use crate::admission_gate::InFlight;

/// Events of one request. Dropping it cancels the request and ends its
/// count as in flight (what a drain waits for).
pub struct GenerationStream {
    id: RequestId,
    events: UnboundedReceiver<GenerationEvent>,
    on_finish: Option<FinishHook>,
    persisted: Option<oneshot::Receiver<PersistReport>>,
    _in_flight: InFlight,
}

/// A whole generation, collected.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub text: String,
    pub tokens: Vec<TokenId>,
    pub reason: FinishReason,
    pub usage: Usage,
    pub timings: Timings,
}

impl GenerationStream {
    pub(crate) fn new(
        id: RequestId,
        events: UnboundedReceiver<GenerationEvent>,
        persisted: Option<oneshot::Receiver<PersistReport>>,
        in_flight: InFlight,
    ) -> Self {
        Self {
            id,
            events,
            on_finish: None,
            persisted,
            _in_flight: in_flight,
        }
    }

    /// Run `hook` when the `Finished` event is read (by [`next`](Self::next),
    /// [`blocking_next`](Self::blocking_next) or [`collect`](Self::collect)).
    pub fn on_finish(&mut self, hook: FinishHook) {
        self.on_finish = Some(hook);
    }

    /// For an agent's request: resolves when the turn's KV has been handed
    /// to persistence; the sender is dropped when it never will be (no disk
    /// tier, the agent's next turn came first, the engine stopped). Taken
    /// once.
    pub fn take_persist_report(&mut self) -> Option<oneshot::Receiver<PersistReport>> {
        self.persisted.take()
    }

    fn observe(&mut self, event: Option<GenerationEvent>) -> Option<GenerationEvent> {
        if let Some(GenerationEvent::Finished { usage, timings, .. }) = &event {
            if let Some(hook) = self.on_finish.take() {
                hook(usage, timings);
            }
        }
        event
    }

    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The next event; `None` once the engine has dropped the request.
    pub async fn next(&mut self) -> Option<GenerationEvent> {
        let event = self.events.recv().await;
        self.observe(event)
    }

    /// Blocking variant for callers outside an async runtime (the CLI).
    pub fn blocking_next(&mut self) -> Option<GenerationEvent> {
        let event = self.events.blocking_recv();
        self.observe(event)
    }

    /// Wait for the whole generation. Errors carry the engine's message.
    pub async fn collect(mut self) -> Result<Completion, String> {
        let mut text = String::new();
        let mut tokens = Vec::new();
        while let Some(event) = self.next().await {
            match event {
                GenerationEvent::Token { id, text: piece } => {
                    tokens.push(id);
                    text.push_str(&piece);
                }
                GenerationEvent::Text { text: piece } => text.push_str(&piece),
                GenerationEvent::Finished {
                    reason,
                    usage,
                    timings,
                } => {
                    return Ok(Completion {
                        text,
                        tokens,
                        reason,
                        usage,
                        timings,
                    })
                }
                GenerationEvent::Failed { message } => return Err(message),
            }
        }
        Err("the engine dropped the request".into())
    }
}
