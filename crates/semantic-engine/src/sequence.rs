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
    /// The request's stop strings and the operator's turn-end strings.
    stop: StopMatcher,
    /// The operator's turn-end strings (see [`Sequence::with_turn_end`]).
    turn_end: Vec<String>,
    /// A stop or turn-end string matched: the text after it is dropped.
    ended_on_string: bool,
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
            turn_end: Vec::new(),
            ended_on_string: false,
        }
    }

    /// Strings the operator says end the model's turn (`--stop`): matched
    /// with the request's own stop strings, but the reply then ends as at
    /// an end-of-generation token ([`FinishReason::EndOfTurn`]), since the
    /// client asked for no such string.
    pub fn with_turn_end(mut self, turn_end: &[String]) -> Self {
        if turn_end.is_empty() {
            return self;
        }
        self.turn_end = turn_end.to_vec();
        let own = &self.sampling.stop;
        let extra = turn_end.iter().filter(|s| !own.contains(s));
        self.stop = StopMatcher::new(own.iter().chain(extra).cloned().collect());
        self
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
            self.ended_on_string = true;
            let client_asked = self.sampling.stop.contains(&stop);
            if !client_asked && self.turn_end.contains(&stop) {
                return AfterSample::Finished(FinishReason::EndOfTurn);
            }
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
        // After a string matched, what followed it is not part of the reply.
        if !self.ended_on_string {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

    fn sequence(
        stop: &[&str],
        turn_end: &[&str],
    ) -> (Sequence, UnboundedReceiver<GenerationEvent>) {
        let (tx, rx) = unbounded_channel();
        let sampling = SamplingParams {
            stop: stop.iter().map(|s| s.to_string()).collect(),
            ..SamplingParams::greedy(100)
        };
        let turn_end: Vec<String> = turn_end.iter().map(|s| s.to_string()).collect();
        let seq =
            Sequence::new(RequestId(1), vec![1, 2], sampling, 64, tx).with_turn_end(&turn_end);
        (seq, rx)
    }

    /// Feed `pieces` as sampled tokens; the reason it stopped and its text.
    fn run(
        seq: &mut Sequence,
        rx: &mut UnboundedReceiver<GenerationEvent>,
        pieces: &[&str],
    ) -> (FinishReason, String) {
        let mut reason = None;
        for (i, piece) in pieces.iter().enumerate() {
            if let AfterSample::Finished(r) =
                seq.accept(100 + i as TokenId, false, piece.as_bytes())
            {
                reason = Some(r);
                break;
            }
        }
        let reason = reason.expect("stopped");
        seq.finish(reason.clone());
        let mut text = String::new();
        while let Ok(event) = rx.try_recv() {
            if let GenerationEvent::Token { text: t, .. } | GenerationEvent::Text { text: t } =
                event
            {
                text.push_str(&t);
            }
        }
        (reason, text)
    }

    #[test]
    fn a_turn_end_string_ends_the_turn_and_drops_what_follows_it() {
        let (mut seq, mut rx) = sequence(&["STOP"], &["\n"]);
        let (reason, text) = run(&mut seq, &mut rx, &["ab", "c\nd", "ef"]);
        assert_eq!(reason, FinishReason::EndOfTurn);
        assert_eq!(text, "abc");
    }

    #[test]
    fn the_clients_own_stop_string_still_reports_itself() {
        let (mut seq, mut rx) = sequence(&["\n"], &["\n", "<|im_end|>"]);
        let (reason, text) = run(&mut seq, &mut rx, &["x", "y\n"]);
        assert_eq!(reason, FinishReason::StopString("\n".into()));
        assert_eq!(text, "xy");
        let (mut seq, mut rx) = sequence(&["STOP"], &["<|im_end|>"]);
        let (reason, text) = run(&mut seq, &mut rx, &["x", "STO", "P"]);
        assert_eq!(reason, FinishReason::StopString("STOP".into()));
        assert_eq!(text, "x");
    }
}
