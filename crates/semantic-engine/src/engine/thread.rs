//! The engine thread: builds the scheduler over the llama.cpp context,
//! indexes the disk tier, then loops — apply commands, run a step, publish
//! counters — until told to stop, and persists every agent on the way out.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use semantic_domain::block_pool::BlockPool;
use semantic_domain::persistence::AgentPersistence;
use semantic_domain::AgentKey;

use super::command::{handle, Command};
use super::{EngineCounters, IDLE_BEAT};
use crate::llama_compute::{ContextShape, LlamaCompute};
use crate::model::LoadedModel;
use crate::scheduler::{Loader, PrefixSharing, Scheduler, SchedulerLimits, StepReport};
use crate::telemetry::{self, EngineGauges};
use crate::{EngineConfig, EngineError};

/// What the engine thread needs for the warm and disk tiers.
pub(super) struct Tiers {
    pub(super) persistence: Option<Arc<dyn AgentPersistence>>,
    /// To post load results back to the engine thread.
    pub(super) commands: Sender<Command>,
}

/// A thread that reads agents' files on request and posts the result back,
/// so the engine thread never waits on disk.
fn spawn_loader(
    persistence: Arc<dyn AgentPersistence>,
    commands: Sender<Command>,
) -> Option<Loader> {
    let (tx, rx) = mpsc::channel::<AgentKey>();
    let spawned = std::thread::Builder::new()
        .name("semantic-loader".into())
        .spawn(move || {
            while let Ok(agent) = rx.recv() {
                let started = std::time::Instant::now();
                let result = persistence.load(&agent);
                let secs = started.elapsed().as_secs_f64();
                if commands
                    .send(Command::Loaded {
                        agent,
                        result,
                        secs,
                    })
                    .is_err()
                {
                    return;
                }
            }
        });
    match spawned {
        Ok(_) => Some(Box::new(move |agent| {
            let _ = tx.send(agent);
        })),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the loader thread; disk hits will be recomputed");
            None
        }
    }
}

pub(super) fn run(
    model: &LoadedModel,
    config: &EngineConfig,
    counters: Arc<EngineCounters>,
    commands: &Receiver<Command>,
    ready: &mpsc::SyncSender<Result<(), EngineError>>,
    tiers: Tiers,
) {
    let scheduler = match build_scheduler(model, config) {
        Ok(scheduler) => scheduler,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let loader = tiers
        .persistence
        .clone()
        .and_then(|p| spawn_loader(p, tiers.commands.clone()));
    drop(tiers.commands);
    let queue = counters.clone();
    let mut scheduler = scheduler
        .with_tiers(config.warm_budget_bytes, tiers.persistence.clone(), loader)
        .disk_budget(config.disk_budget_bytes)
        .stall_admission(config.stall_admission_for_tests)
        .prefix_sharing(if config.share_prefixes_across_tenants {
            PrefixSharing::AcrossTenants
        } else {
            PrefixSharing::WithinTenant
        })
        .on_dequeue(Box::new(move || {
            let depth = queue.queued.fetch_sub(1, Ordering::SeqCst);
            telemetry::queue_depth(depth.saturating_sub(1));
        }));
    let counters = counters.as_ref();
    if let Some(persistence) = &tiers.persistence {
        let stored = persistence.index();
        tracing::info!(agents = stored.len(), "disk tier indexed");
        scheduler.seed_disk_index(stored);
    }
    counters
        .pool_total_blocks
        .store(scheduler.pool().total_blocks(), Ordering::Relaxed);
    counters.heartbeat.beat();
    counters.progress.beat();
    // Every engine series exists, at its start-up value, before `start`
    // returns: a scrape of a fresh server sees zeros, not nothing.
    telemetry::register();
    let mut gauges = EngineGauges::new();
    publish_gauges(&scheduler, &mut gauges, true);
    // Only now does `start` return: a started engine has its disk tier
    // indexed, so returning agents are found from the first request on.
    let _ = ready.send(Ok(()));
    tracing::info!(
        context_tokens = config.total_blocks() * config.block_tokens,
        max_sequences = config.max_sequences,
        step_token_budget = config.step_token_budget,
        kv_type = %config.kv_type,
        "engine ready"
    );
    'run: loop {
        counters.heartbeat.beat();
        publish_pool(&scheduler, counters);
        // Idle with unsaved turns: save one at a time, unless a command comes.
        while scheduler.is_idle() && scheduler.has_unsaved() {
            match receive(commands, None, &mut scheduler, counters) {
                Received::Stop | Received::Closed => break 'run,
                Received::Applied => {}
                Received::Nothing => scheduler.persist_one(),
            }
            counters.heartbeat.beat();
        }
        if scheduler.is_idle() {
            counters.progress.beat();
            publish_gauges(&scheduler, &mut gauges, true);
            // Wake up now and then to beat (an idle engine is alive), and
            // when an unsaved turn settles.
            let wait = scheduler
                .unsaved_settles_in()
                .map_or(IDLE_BEAT, |settle| settle.min(IDLE_BEAT));
            match receive(commands, Some(wait), &mut scheduler, counters) {
                Received::Stop | Received::Closed => break,
                Received::Nothing => continue,
                Received::Applied => {}
            }
        }
        if apply_queued(commands, &mut scheduler, counters).stops() {
            break;
        }
        let report = scheduler.step();
        if report.batch_tokens > 0 || report.admitted > 0 || scheduler.waiting() == 0 {
            counters.progress.beat();
        }
        publish(&mut scheduler, counters, report);
        gauges.step(report.batch_tokens, report.sampled);
        publish_gauges(&scheduler, &mut gauges, false);
        if report.batch_tokens == 0 && !scheduler.is_idle() {
            // Everything waiting is blocked (on a file being read, or on a
            // busy agent): sleep until a command arrives, polling now and
            // then for callers that went away.
            let wait = Some(BLOCKED_POLL);
            if receive(commands, wait, &mut scheduler, counters).stops() {
                break;
            }
        }
    }
    scheduler.persist_all();
    scheduler.abort_all("the engine shut down before this request finished");
    counters.queued.store(0, Ordering::SeqCst);
    counters.running.store(0, Ordering::SeqCst);
    telemetry::queue_depth(0);
    publish_gauges(&scheduler, &mut gauges, true);
}

/// How often a loop whose waiting work is all blocked looks for callers
/// that went away.
const BLOCKED_POLL: Duration = Duration::from_millis(10);

/// What waiting for a command came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Received {
    /// A command came and was applied.
    Applied,
    /// None came (in time).
    Nothing,
    /// A shutdown command came.
    Stop,
    /// Every sender is gone: nothing can ever come again.
    Closed,
}

impl Received {
    fn stops(self) -> bool {
        matches!(self, Self::Stop | Self::Closed)
    }
}

/// Take one command (waiting up to `wait`; `None` does not wait) and apply
/// it through the one dispatch, [`handle`].
fn receive(
    commands: &Receiver<Command>,
    wait: Option<Duration>,
    scheduler: &mut Scheduler<LlamaCompute<'_>>,
    counters: &EngineCounters,
) -> Received {
    let command = match wait {
        Some(wait) => commands.recv_timeout(wait).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => Received::Nothing,
            mpsc::RecvTimeoutError::Disconnected => Received::Closed,
        }),
        None => commands.try_recv().map_err(|e| match e {
            mpsc::TryRecvError::Empty => Received::Nothing,
            mpsc::TryRecvError::Disconnected => Received::Closed,
        }),
    };
    match command {
        Ok(command) => {
            if handle(command, scheduler, counters) {
                Received::Applied
            } else {
                Received::Stop
            }
        }
        Err(outcome) => outcome,
    }
}

/// Apply every command already queued; `Stop` if one said so (the rest
/// are still applied, so no caller waits on a reply that never comes).
fn apply_queued(
    commands: &Receiver<Command>,
    scheduler: &mut Scheduler<LlamaCompute<'_>>,
    counters: &EngineCounters,
) -> Received {
    let mut outcome = Received::Nothing;
    loop {
        match receive(commands, None, scheduler, counters) {
            Received::Nothing => return outcome,
            Received::Closed => return Received::Closed,
            Received::Stop => outcome = Received::Stop,
            Received::Applied => {}
        }
    }
}

fn publish_gauges(scheduler: &Scheduler<LlamaCompute<'_>>, gauges: &mut EngineGauges, idle: bool) {
    gauges.publish(
        scheduler.running(),
        scheduler.pool(),
        scheduler.agents(),
        idle,
    );
}

fn build_scheduler<'m>(
    model: &'m LoadedModel,
    config: &EngineConfig,
) -> Result<Scheduler<LlamaCompute<'m>>, EngineError> {
    let pool = BlockPool::new(config.total_blocks(), config.block_tokens).map_err(|e| {
        EngineError::InvalidConfig {
            setting: "context_tokens",
            reason: e.to_string(),
        }
    })?;
    let shape = ContextShape {
        context_tokens: pool.total_blocks() * pool.block_tokens(),
        max_sequences: config.max_sequences,
        batch_tokens: config.step_token_budget,
        threads: config.threads(),
        kv_type: config.kv_type,
    };
    let compute = LlamaCompute::new(model, shape)?;
    let limits = SchedulerLimits {
        step_token_budget: config.step_token_budget as usize,
        max_sequences: config.max_sequences as usize,
    };
    Ok(Scheduler::new(compute, limits, pool))
}

/// Pool occupancy for readers on other threads (probes, metrics).
fn publish_pool(scheduler: &Scheduler<LlamaCompute<'_>>, counters: &EngineCounters) {
    let pool = scheduler.pool();
    counters
        .pool_used_blocks
        .store(pool.used_blocks(), Ordering::Relaxed);
    counters
        .pool_pinned_blocks
        .store(scheduler.pinned_blocks(), Ordering::Relaxed);
}

fn publish(
    scheduler: &mut Scheduler<LlamaCompute<'_>>,
    counters: &EngineCounters,
    report: StepReport,
) {
    counters
        .running
        .store(scheduler.running(), Ordering::Relaxed);
    counters.steps.fetch_add(1, Ordering::Relaxed);
    counters
        .batch_tokens
        .fetch_add(report.batch_tokens as u64, Ordering::Relaxed);
    counters
        .sampled_tokens
        .fetch_add(report.sampled as u64, Ordering::Relaxed);
}
