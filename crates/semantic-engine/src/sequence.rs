//! One request's life inside the scheduler.

use std::time::{Duration, Instant};

use semantic_domain::block_pool::OwnerId;
use semantic_domain::stop::StopMatcher;
use semantic_domain::utf8_stream::Utf8Stream;
use semantic_domain::{generation::Timings, Usage};
use semantic_domain::{AgentKey, CacheSource, FinishReason, GenerationEvent, RequestId, TenantId};
use semantic_domain::{SamplingParams, TokenId};
use tokio::sync::mpsc::UnboundedSender;

use crate::backend::SlotId;
use crate::stream::PersistReportSender;
use crate::telemetry;

/// A live request: its tokens, how far its KV is computed, and where its
/// events go.
pub(crate) struct Sequence {
    pub id: RequestId,
    /// Whose caches this request may reuse (its agent is of this tenant).
    pub tenant: TenantId,
    /// The agent whose cache this request extends, if any.
    pub agent: Option<AgentKey>,
    /// Block-pool owner of this sequence's cells (inherited when it takes
    /// over a hot agent's cells).
    pub owner: OwnerId,
    pub slot: Option<SlotId>,
    /// Prompt tokens whose KV was reused rather than prefilled.
    pub cached_tokens: u32,
    pub cache_source: CacheSource,
    /// Prompt followed by every sampled token. The last sampled token is fed
    /// back on the next step, so `tokens.len() - n_past` tokens are pending.
    pub tokens: Vec<TokenId>,
    pub prompt_len: usize,
    /// Tokens whose KV is in the context.
    pub n_past: usize,
    pub sampling: SamplingParams,
    /// Most positions this sequence may use (the model's context window).
    pub window: usize,
    text: Utf8Stream,
    stop: StopMatcher,
    events: UnboundedSender<GenerationEvent>,
    pub submitted: Instant,
    pub scheduled: Option<Instant>,
    /// Time spent placing the KV at first admission (see `Timings::restore`).
    pub restore: Duration,
    pub first_token: Option<Instant>,
    last_token: Option<Instant>,
    /// Told when this turn's KV is handed to persistence (agents only).
    pub persist_report: Option<PersistReportSender>,
    /// The caller has gone away.
    pub cancelled: bool,
    /// Counted against the engine's queue capacity until first admitted.
    pub queued: bool,
}

/// What happened after a token was sampled.
pub(crate) enum AfterSample {
    Continue,
    Finished(FinishReason),
}

impl Sequence {
    pub fn new(
        id: RequestId,
        prompt: Vec<TokenId>,
        sampling: SamplingParams,
        window: usize,
        events: UnboundedSender<GenerationEvent>,
    ) -> Self {
        let stop = StopMatcher::new(sampling.stop.clone());
        Self {
            id,
            tenant: TenantId::open(),
            agent: None,
            owner: OwnerId(id.0),
            slot: None,
            cached_tokens: 0,
            cache_source: CacheSource::Cold,
            prompt_len: prompt.len(),
            tokens: prompt,
            n_past: 0,
            sampling,
            window,
            text: Utf8Stream::new(),
            stop,
            events,
            submitted: Instant::now(),
            scheduled: None,
            restore: Duration::ZERO,
            first_token: None,
            last_token: None,
            persist_report: None,
            cancelled: false,
            queued: true,
        }
    }

    /// The tenant the request runs for and, if it names one, its agent
    /// (always of that tenant).
    pub fn with_agent(mut self, tenant: TenantId, agent: Option<AgentKey>) -> Self {
        debug_assert!(agent.as_ref().is_none_or(|a| a.tenant == tenant));
        self.tenant = tenant;
        self.agent = agent;
        self
    }

    /// Admitted, its KV placed after `placing` began; only the first
    /// admission counts (a preempted sequence is admitted again).
    pub fn admitted(&mut self, placing: Instant) {
        if self.scheduled.is_none() {
            self.restore = placing.elapsed();
            self.scheduled = Some(Instant::now());
        }
    }

    pub fn owner(&self) -> OwnerId {
        self.owner
    }

    /// Tokens whose KV is in the context (what a parked cache holds).
    pub fn computed_tokens(&self) -> &[TokenId] {
        &self.tokens[..self.n_past]
    }

    pub fn pending(&self) -> usize {
        self.tokens.len() - self.n_past
    }

    pub fn generated(&self) -> u32 {
        (self.tokens.len() - self.prompt_len) as u32
    }

    /// Still prefilling its prompt (or its history, after a preemption).
    pub fn is_prefilling(&self) -> bool {
        self.pending() > 1 || self.generated() == 0
    }

    /// The caller dropped its receiver.
    pub fn caller_gone(&self) -> bool {
        self.cancelled || self.events.is_closed()
    }

    /// Record a sampled token, stream its text, and decide whether to stop.
    pub fn accept(&mut self, token: TokenId, eog: bool, bytes: &[u8]) -> AfterSample {
        let now = Instant::now();
        self.first_token.get_or_insert(now);
        if let Some(previous) = self.last_token.replace(now) {
            telemetry::inter_token(now.duration_since(previous));
        }
        if eog && !self.sampling.ignore_eos {
            return AfterSample::Finished(FinishReason::EndOfTurn);
        }
        self.tokens.push(token);
        let text = self.text.push(bytes);
        let out = self.stop.push(&text);
        self.send(GenerationEvent::Token {
            id: token,
            text: out.emit,
        });
        if let Some(stop) = out.matched {
            return AfterSample::Finished(FinishReason::StopString(stop));
        }
        if self
            .sampling
            .max_tokens
            .is_some_and(|m| self.generated() >= m)
        {
            return AfterSample::Finished(FinishReason::MaxTokens);
        }
        if self.tokens.len() >= self.window {
            return AfterSample::Finished(FinishReason::ContextFull);
        }
        AfterSample::Continue
    }

    /// Send the final event, flushing text held back for stop matching.
    pub fn finish(&mut self, reason: FinishReason) {
        if !matches!(reason, FinishReason::StopString(_)) {
            let mut rest = self.text.flush();
            rest = self.stop.push(&rest).emit + &self.stop.flush();
            if !rest.is_empty() {
                self.send(GenerationEvent::Text { text: rest });
            }
        }
        let now = Instant::now();
        let since =
            |t: Option<Instant>| t.map_or(0.0, |t| t.duration_since(self.submitted).as_secs_f64());
        let timings = Timings {
            queue: since(self.scheduled),
            restore: self.restore.as_secs_f64(),
            first_token: since(self.first_token),
            total: now.duration_since(self.submitted).as_secs_f64(),
        };
        let usage = Usage {
            prompt_tokens: self.prompt_len as u32,
            completion_tokens: self.generated(),
            cached_tokens: self.cached_tokens,
            cache_source: self.cache_source,
        };
        tracing::debug!(
            request = %self.id,
            agent = ?self.agent.as_ref().map(|a| a.agent.as_str()),
            tenant = self.tenant.as_str(),
            prompt = usage.prompt_tokens,
            cached = usage.cached_tokens,
            source = usage.cache_source.as_str(),
            queue_ms = timings.queue * 1e3,
            first_token_ms = timings.first_token * 1e3,
            total_ms = timings.total * 1e3,
            "finished"
        );
        telemetry::finished(&usage, &timings);
        self.send(GenerationEvent::Finished {
            reason,
            usage,
            timings,
        });
    }

    pub fn fail(&mut self, message: String) {
        self.send(GenerationEvent::Failed { message });
    }

    fn send(&mut self, event: GenerationEvent) {
        if self.events.send(event).is_err() {
            self.cancelled = true;
        }
    }
}
