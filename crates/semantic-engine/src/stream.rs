//! The caller's end of one generation.

use semantic_domain::generation::Timings;
use semantic_domain::{FinishReason, GenerationEvent, RequestId, TokenId, Usage};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::admission_gate::InFlight;

/// Events of one request. Dropping it cancels the request and ends its
/// count as in flight (what a drain waits for).
pub struct GenerationStream {
    id: RequestId,
    events: UnboundedReceiver<GenerationEvent>,
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
        in_flight: InFlight,
    ) -> Self {
        Self {
            id,
            events,
            _in_flight: in_flight,
        }
    }

    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The next event; `None` once the engine has dropped the request.
    pub async fn next(&mut self) -> Option<GenerationEvent> {
        self.events.recv().await
    }

    /// Blocking variant for callers outside an async runtime (the CLI).
    pub fn blocking_next(&mut self) -> Option<GenerationEvent> {
        self.events.blocking_recv()
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
