//! The engine thread and the handle async callers use to reach it.
//!
//! One dedicated OS thread owns the llama.cpp context (not thread-safe) and
//! runs the scheduler; callers send it commands over a channel and receive
//! their tokens on a per-request channel. Dropping a [`GenerationStream`]
//! cancels its request: the engine notices before its next step and frees
//! the sequence's KV cells at once.
//!
//! This module is the handle; `engine/command.rs` holds the commands and
//! their one dispatch, `engine/thread.rs` the thread's loop.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use semantic_domain::persistence::AgentPersistence;
use semantic_domain::{AgentKey, GenerateRequest, RequestId};
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

use crate::admission_gate::AdmissionGate;
use crate::agent_cache::AgentInfo;
use crate::model::LoadedModel;
use crate::scheduler::EvictTarget;
use crate::sequence::Sequence;
use crate::stream::GenerationStream;
use crate::telemetry::{self, Heartbeat};
use crate::{EngineConfig, EngineError};

mod command;
mod thread;

use command::Command;
use thread::Tiers;

/// A point-in-time view of the engine, answered by the engine thread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineSnapshot {
    pub waiting: usize,
    pub running: usize,
    /// KV cells held by all llama.cpp sequences (0 when nothing is live).
    pub kv_tokens: u32,
    pub pool_total_blocks: u32,
    pub pool_used_blocks: u32,
    pub steps: u64,
}

/// Counters the engine thread keeps current for cheap reads from any thread.
#[derive(Debug, Default)]
pub struct EngineCounters {
    /// Submitted and not yet admitted.
    pub queued: AtomicUsize,
    pub running: AtomicUsize,
    pub steps: AtomicU64,
    pub batch_tokens: AtomicU64,
    pub sampled_tokens: AtomicU64,
    /// Beaten by the engine thread at every loop iteration, and at least
    /// every [`IDLE_BEAT`] while idle.
    pub heartbeat: Heartbeat,
    /// Beaten whenever the scheduler moved work forward (a batch ran or a
    /// request was admitted) or had nothing waiting: a thread that beats
    /// its heartbeat but not this one while requests wait is stuck.
    pub progress: Heartbeat,
    pub pool_total_blocks: AtomicU32,
    pub pool_used_blocks: AtomicU32,
    /// Blocks held by running requests (idle agents' blocks are evictable).
    pub pool_pinned_blocks: AtomicU32,
}

/// How often an idle engine thread wakes to beat its heartbeat.
pub const IDLE_BEAT: Duration = Duration::from_secs(1);

struct Shared {
    commands: Mutex<Sender<Command>>,
    model: Arc<LoadedModel>,
    config: EngineConfig,
    counters: Arc<EngineCounters>,
    model_load: Duration,
    accepting: AtomicBool,
    gate: Arc<AdmissionGate>,
    next_id: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Dropping the last handle without `shutdown` still stops the engine
/// thread (persisting every agent), without waiting for it: the loader
/// thread's sender would otherwise keep the command channel open forever.
impl Drop for Shared {
    fn drop(&mut self) {
        if let Ok(tx) = self.commands.lock() {
            let _ = tx.send(Command::Shutdown);
        }
    }
}

/// A cheap, cloneable handle to a running engine.
#[derive(Clone)]
pub struct EngineHandle {
    shared: Arc<Shared>,
}

impl EngineHandle {
    /// Load the model (reporting progress in [0, 1]) and start the engine
    /// thread, with no disk tier.
    pub fn start(
        config: EngineConfig,
        progress: impl FnMut(f32) + 'static,
    ) -> Result<Self, EngineError> {
        Self::start_with(config, None, progress)
    }

    /// Like [`EngineHandle::start`], persisting agents' caches through
    /// `persistence` (whose files are indexed at start-up).
    pub fn start_with(
        mut config: EngineConfig,
        persistence: Option<Arc<dyn AgentPersistence>>,
        progress: impl FnMut(f32) + 'static,
    ) -> Result<Self, EngineError> {
        config.validate()?;
        let loading = Instant::now();
        let model = Arc::new(LoadedModel::load(
            &config.model_path,
            config.placement(),
            progress,
        )?);
        let model_load = loading.elapsed();
        config.apply_kv_budget(&model.info().kv_geometry)?;
        let counters = Arc::new(EngineCounters::default());
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let thread = {
            let (model, counters, config) = (model.clone(), counters.clone(), config.clone());
            let tiers = Tiers {
                persistence,
                commands: tx.clone(),
            };
            std::thread::Builder::new()
                .name("semantic-engine".into())
                .spawn(move || thread::run(&model, &config, counters, &rx, &ready_tx, tiers))
                .map_err(|e| {
                    EngineError::ContextCreate(format!("cannot spawn engine thread: {e}"))
                })?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(EngineError::Stopped),
        }
        Ok(Self {
            shared: Arc::new(Shared {
                commands: Mutex::new(tx),
                model,
                config,
                counters,
                model_load,
                accepting: AtomicBool::new(true),
                gate: Arc::new(AdmissionGate::default()),
                next_id: AtomicU64::new(1),
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    pub fn model(&self) -> &LoadedModel {
        &self.shared.model
    }

    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    pub fn counters(&self) -> &EngineCounters {
        &self.shared.counters
    }

    /// How long loading the model file took.
    pub fn model_load_duration(&self) -> Duration {
        self.shared.model_load
    }

    /// Time since the engine thread last completed a loop iteration (a
    /// step, a command, or an idle wake-up every [`IDLE_BEAT`]). Grows
    /// without bound when the thread is stuck or gone.
    pub fn heartbeat_age(&self) -> Duration {
        self.shared.counters.heartbeat.age()
    }

    /// How long requests have been waiting with the scheduler admitting
    /// and computing nothing; `None` while nothing waits or work moves.
    pub fn stalled_for(&self) -> Option<Duration> {
        let counters = &self.shared.counters;
        (counters.queued.load(Ordering::SeqCst) > 0).then(|| counters.progress.age())
    }

    /// Most positions one sequence may use: the smaller of the model's
    /// training context and the engine's KV capacity.
    pub fn context_window(&self) -> u32 {
        let pool_tokens = self.shared.config.total_blocks() * self.shared.config.block_tokens;
        self.shared.model.info().context_length.min(pool_tokens)
    }

    /// False once [`EngineHandle::shutdown`] began: the engine takes no new
    /// work, and failures of in-flight requests are the shutdown's doing.
    /// Draining counts too: what fails then is cut by the coming shutdown.
    pub fn is_accepting(&self) -> bool {
        self.shared.accepting.load(Ordering::SeqCst) && !self.shared.gate.is_closed()
    }

    /// What bounds the context window, in words for error messages: a
    /// prompt that cannot fit the KV pool even with every other agent
    /// evicted is refused at submit time, naming the pool's size.
    fn window_limit(&self) -> String {
        let config = &self.shared.config;
        let pool_tokens = config.total_blocks() * config.block_tokens;
        let trained = self.shared.model.info().context_length;
        if pool_tokens <= trained {
            let bytes = self
                .shared
                .model
                .info()
                .kv_geometry
                .bytes_per_token(config.kv_type);
            format!(
                "the KV pool holds {pool_tokens} tokens of {} KV, {} MiB; raise --kv-budget or --context-tokens",
                config.kv_type,
                (u64::from(pool_tokens) * bytes) >> 20
            )
        } else {
            format!("the model was trained for {trained} tokens")
        }
    }

    /// Validate a request and queue it. Events arrive on the returned stream;
    /// dropping the stream cancels the request.
    pub fn submit(&self, mut request: GenerateRequest) -> Result<GenerationStream, EngineError> {
        request.sampling.max_tokens = Some(self.validate(&request)?);
        if !self.shared.accepting.load(Ordering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        let in_flight = self.shared.gate.enter().ok_or(EngineError::Draining)?;
        let capacity = self.shared.config.queue_capacity;
        let depth = self.shared.counters.queued.fetch_add(1, Ordering::SeqCst);
        if depth >= capacity {
            self.shared.counters.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(EngineError::QueueFull { capacity });
        }
        telemetry::queue_depth(depth + 1);
        let id = RequestId(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = tokio_mpsc::unbounded_channel();
        let window = self.context_window() as usize;
        let (persisted, persist_report) = match request.agent {
            Some(_) => {
                let (tx, rx) = oneshot::channel();
                (Some(rx), Some(tx))
            }
            None => (None, None),
        };
        let agent = request.agent_key();
        let mut seq = Sequence::new(id, request.prompt, request.sampling, window, tx)
            .with_turn_end(&self.shared.config.turn_end)
            .with_agent(request.tenant, agent);
        seq.persist_report = persist_report;
        if self.send(Command::Submit(Box::new(seq))).is_err() {
            self.shared.counters.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(EngineError::Stopped);
        }
        Ok(GenerationStream::new(id, rx, persisted, in_flight))
    }

    /// Start draining: every later `submit` fails with
    /// [`EngineError::Draining`], generations already submitted run on.
    pub fn begin_drain(&self) {
        self.shared.gate.close();
    }

    /// Generations submitted whose streams are still held by callers.
    pub fn in_flight(&self) -> u64 {
        self.shared.gate.in_flight()
    }

    /// Resolves once no generation is in flight; with
    /// [`EngineHandle::begin_drain`] first, once the engine has drained.
    pub async fn drained(&self) {
        self.shared.gate.idle().await;
    }

    /// Check a request; returns its effective `max_tokens`.
    fn validate(&self, request: &GenerateRequest) -> Result<u32, EngineError> {
        let prompt = request.prompt.len() as u32;
        let window = self.context_window();
        if prompt == 0 {
            return Err(EngineError::EmptyPrompt);
        }
        if prompt >= window {
            return Err(EngineError::PromptTooLong {
                tokens: prompt,
                limit: window - 1,
                why: self.window_limit(),
            });
        }
        request.sampling.validate()?;
        if let Some(grammar) = &request.sampling.grammar {
            crate::grammar::check(&self.shared.model, grammar)?;
        }
        let vocab = self.shared.model.vocab_size() as i32;
        if let Some(&bad) = request.prompt.iter().find(|&&t| t < 0 || t >= vocab) {
            return Err(EngineError::InvalidToken(bad));
        }
        self.max_tokens(request.sampling.max_tokens, window - prompt)
    }

    /// The `max_tokens` rule (default, cap, room left, strict) runs here and
    /// only here: submit is the one place that knows both the context window
    /// and the prompt's token count, and every caller passes it (both API
    /// families, `generate`, the benchmarks), so none can skip or vary it.
    fn max_tokens(&self, requested: Option<u32>, room: u32) -> Result<u32, EngineError> {
        use semantic_domain::{MaxTokensRefused, MaxTokensSource};
        let policy = &self.shared.config.max_tokens;
        let resolved = policy
            .resolve(requested, room)
            .map_err(|refused| match refused {
                MaxTokensRefused::OverCap { requested, cap } => {
                    EngineError::MaxTokensOverCap { requested, cap }
                }
                MaxTokensRefused::OverRoom { requested, room } => EngineError::MaxTokensTooLarge {
                    requested,
                    available: room,
                    prompt: self.context_window() - room,
                },
            })?;
        if matches!(
            resolved.source,
            MaxTokensSource::ClampedToCap | MaxTokensSource::ClampedToRoom
        ) {
            tracing::debug!(
                requested,
                max_tokens = resolved.max_tokens,
                source = ?resolved.source,
                "max_tokens clamped"
            );
        }
        Ok(resolved.max_tokens)
    }

    /// Ask the engine thread for its current state.
    pub async fn snapshot(&self) -> Result<EngineSnapshot, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Snapshot(tx))?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Every agent the engine knows (hot, warm, on disk), most recent first.
    pub async fn agents(&self) -> Result<Vec<AgentInfo>, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::ListAgents(tx))?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Move an idle agent's cache to RAM or disk; false if unknown or busy.
    pub async fn evict_agent(
        &self,
        agent: AgentKey,
        target: EvictTarget,
    ) -> Result<bool, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::EvictAgent {
            agent,
            target,
            reply,
        })?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Forget an idle agent's cache (in memory; on disk unless `keep_disk`).
    pub async fn delete_agent(
        &self,
        agent: AgentKey,
        keep_disk: bool,
    ) -> Result<bool, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::DeleteAgent {
            agent,
            keep_disk,
            reply,
        })?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Write every completed turn to disk and wait until it is there.
    pub async fn persist_all(&self) -> Result<(), EngineError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::PersistAll(tx))?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// Refuse new work, fail what is in flight and stop the engine thread.
    /// Blocks until the thread has exited.
    pub fn shutdown(&self) {
        self.shared.accepting.store(false, Ordering::SeqCst);
        // Shutting down implies draining: callers whose generations fail now
        // can tell the server went away from an internal fault.
        self.shared.gate.close();
        let _ = self.send(Command::Shutdown);
        let thread = self.shared.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("engine thread panicked");
            }
        }
    }

    fn send(&self, command: Command) -> Result<(), EngineError> {
        let tx = self
            .shared
            .commands
            .lock()
            .map_err(|_| EngineError::Stopped)?;
        tx.send(command).map_err(|_| EngineError::Stopped)
    }
}
