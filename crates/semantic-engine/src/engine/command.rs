//! The engine thread's commands and their one dispatch: every request the
//! handle (or the loader thread) makes of the engine thread is a
//! [`Command`], and [`handle`] is the only place that applies one.

use std::sync::atomic::Ordering;

use semantic_domain::persistence::LoadResult;
use semantic_domain::AgentKey;
use tokio::sync::oneshot;

use super::{EngineCounters, EngineSnapshot};
use crate::agent_cache::AgentInfo;
use crate::llama_compute::LlamaCompute;
use crate::scheduler::{EvictTarget, Scheduler};
use crate::sequence::Sequence;

/// What the handle (and the loader thread) ask of the engine thread.
pub(super) enum Command {
    Submit(Box<Sequence>),
    Snapshot(oneshot::Sender<EngineSnapshot>),
    Loaded {
        agent: AgentKey,
        result: LoadResult,
        secs: f64,
    },
    ListAgents(oneshot::Sender<Vec<AgentInfo>>),
    EvictAgent {
        agent: AgentKey,
        target: EvictTarget,
        reply: oneshot::Sender<bool>,
    },
    DeleteAgent {
        agent: AgentKey,
        keep_disk: bool,
        reply: oneshot::Sender<bool>,
    },
    PersistAll(oneshot::Sender<()>),
    Shutdown,
}

/// Apply one command; false means "stop the engine".
pub(super) fn handle(
    cmd: Command,
    scheduler: &mut Scheduler<LlamaCompute<'_>>,
    counters: &EngineCounters,
) -> bool {
    match cmd {
        Command::Submit(seq) => scheduler.enqueue(*seq),
        Command::Snapshot(reply) => {
            let _ = reply.send(EngineSnapshot {
                waiting: scheduler.waiting(),
                running: scheduler.running(),
                kv_tokens: scheduler.kv_tokens_held(),
                pool_total_blocks: scheduler.pool().total_blocks(),
                pool_used_blocks: scheduler.pool().used_blocks(),
                steps: counters.steps.load(Ordering::Relaxed),
            });
        }
        Command::Loaded {
            agent,
            result,
            secs,
        } => scheduler.on_loaded(agent, result, secs),
        Command::ListAgents(reply) => {
            let _ = reply.send(scheduler.agents().list());
        }
        Command::EvictAgent {
            agent,
            target,
            reply,
        } => {
            let _ = reply.send(scheduler.evict_agent(&agent, target));
        }
        Command::DeleteAgent {
            agent,
            keep_disk,
            reply,
        } => {
            let _ = reply.send(scheduler.delete_agent(&agent, keep_disk));
        }
        Command::PersistAll(reply) => {
            scheduler.persist_all();
            let _ = reply.send(());
        }
        Command::Shutdown => return false,
    }
    true
}
