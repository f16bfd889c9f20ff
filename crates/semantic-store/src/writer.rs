//! Background persistence: the engine hands over a record and goes on; one
//! thread writes it to disk.
//!
//! The queue is a map keyed by agent rather than a channel: a newer record
//! for an agent replaces a queued older one (coalescing), so at most one
//! blob per agent waits in memory however fast the engine produces them,
//! and a slow disk costs only write frequency, never memory or latency.
//!
//! A record is written once it has waited [`SETTLE`], and a record replaced
//! in that time is never written at all. The engine already lets a turn
//! settle before it snapshots it (`SNAPSHOT_SETTLE` in semantic-engine), so
//! an agent that comes straight back pays neither the copy nor the write;
//! this wait covers the snapshots taken without settling (an agent evicted
//! to RAM right after its turn) and keeps the write, which takes one of
//! the CPU's cores, off the next turn of an agent that comes back soon
//! after (measured: a write during a warm restore of 2K tokens cost it
//! 120 ms on 2 cores). `flush` and shutdown skip the wait.

use std::collections::{HashMap, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use semantic_domain::AgentKey;

use crate::disk_store::DiskStore;
use crate::error::StoreError;
use crate::record::AgentRecord;

/// How long a record waits before it is written. Files trail a finished
/// turn by the engine's snapshot settle (400 ms) plus this plus one write.
pub const SETTLE: Duration = Duration::from_millis(500);

/// Called on the writer thread after each write attempt, with the bytes
/// written or the error and how long the attempt took. Must not call
/// [`PersistWriter::flush`] (the write it reports is not finished yet).
pub type OnWritten = Box<dyn Fn(&AgentKey, Result<u64, &StoreError>, Duration) + Send>;

/// Counters since the writer started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub submitted: u64,
    pub written: u64,
    pub failed: u64,
    /// Records replaced by a newer one for the same agent before being written.
    pub coalesced: u64,
    /// Records dropped by [`PersistWriter::cancel`].
    pub cancelled: u64,
    pub bytes_written: u64,
    pub last_write: Option<Duration>,
    /// Records waiting now (one per agent at most).
    pub queued: usize,
}

/// One queued record and the oldest submission it stands for, so `flush`
/// knows which earlier submissions it covers.
struct Pending {
    record: AgentRecord,
    oldest_seq: u64,
    /// When the oldest submission it stands for arrived.
    since: Instant,
}

#[derive(Default)]
struct Queue {
    pending: HashMap<AgentKey, Pending>,
    /// Agents in order of their oldest unwritten submission.
    order: VecDeque<AgentKey>,
    /// Oldest submission covered by the write in progress.
    in_flight: Option<u64>,
    next_seq: u64,
    closing: bool,
    /// Callers blocked in `flush`: while any waits, records do not settle.
    flushing: usize,
    stats: WriterStats,
}

impl Queue {
    /// The oldest submission not yet on disk (or failed), if any.
    fn oldest_outstanding(&self) -> Option<u64> {
        let queued = self.pending.values().map(|p| p.oldest_seq);
        queued.chain(self.in_flight).min()
    }
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when work arrives or the writer is closing.
    work: Condvar,
    /// Signalled after every write attempt.
    progress: Condvar,
}

impl Shared {
    // The lock is never held across anything that can panic, so a poisoned
    // mutex still guards consistent data.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Owns the writer thread. Dropping it (or [`shutdown`](Self::shutdown))
/// writes everything still queued, then joins the thread.
pub struct PersistWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl PersistWriter {
    /// Start the writer thread for `store`.
    pub fn start(store: Arc<DiskStore>) -> std::io::Result<Self> {
        Self::start_with(store, None)
    }

    /// Start with a completion hook (metrics, tier bookkeeping).
    pub fn start_with(
        store: Arc<DiskStore>,
        on_written: Option<OnWritten>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            progress: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("kv-persist".into())
            .spawn(move || run(&worker, &store, on_written.as_ref()))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Queue `record` for writing; returns at once. A queued older record
    /// for the same agent is replaced.
    pub fn submit(&self, record: AgentRecord) {
        let mut q = self.shared.lock();
        let seq = q.next_seq;
        q.next_seq += 1;
        q.stats.submitted += 1;
        let agent = record.meta.agent.clone();
        match q.pending.get_mut(&agent) {
            Some(pending) => {
                pending.record = record;
                q.stats.coalesced += 1;
            }
            None => {
                q.pending.insert(
                    agent.clone(),
                    Pending {
                        record,
                        oldest_seq: seq,
                        since: Instant::now(),
                    },
                );
                q.order.push_back(agent);
            }
        }
        drop(q);
        self.shared.work.notify_one();
    }

    /// Drop `agent`'s queued record, if any (e.g. the agent was deleted). A
    /// write already in progress still completes.
    pub fn cancel(&self, agent: &AgentKey) -> bool {
        let mut q = self.shared.lock();
        if q.pending.remove(agent).is_none() {
            return false;
        }
        q.order.retain(|a| a != agent);
        q.stats.cancelled += 1;
        drop(q);
        self.shared.progress.notify_all();
        true
    }

    /// Block until every record submitted before this call is written (or
    /// its write failed, or it was superseded by a newer one that is written).
    pub fn flush(&self) {
        let mut q = self.shared.lock();
        let target = q.next_seq;
        q.flushing += 1;
        self.shared.work.notify_all();
        while q.oldest_outstanding().is_some_and(|seq| seq < target) {
            q = self
                .shared
                .progress
                .wait(q)
                .unwrap_or_else(PoisonError::into_inner);
        }
        q.flushing -= 1;
    }

    pub fn stats(&self) -> WriterStats {
        let q = self.shared.lock();
        WriterStats {
            queued: q.pending.len(),
            ..q.stats.clone()
        }
    }

    /// Write what is queued, then stop the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.shared.lock().closing = true;
        self.shared.work.notify_all();
        if thread.join().is_err() {
            tracing::warn!("KV persist thread panicked");
        }
    }
}

impl Drop for PersistWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The writer thread: take the oldest queued agent, write, report, repeat;
/// exit once closing and empty.
fn run(shared: &Shared, store: &DiskStore, on_written: Option<&OnWritten>) {
    loop {
        let Some(pending) = next_job(shared) else {
            return;
        };
        let agent = pending.record.meta.agent.clone();
        let started = Instant::now();
        let result = panic::catch_unwind(AssertUnwindSafe(|| store.save(&pending.record)))
            .unwrap_or_else(|_| {
                Err(StoreError::InvalidRecord {
                    agent: agent.clone(),
                    reason: "the save panicked".into(),
                })
            });
        let took = started.elapsed();
        crate::telemetry::persisted(took);
        drop(pending);
        if let Err(err) = &result {
            tracing::warn!(agent = %agent, error = %err, "cannot persist agent KV");
        }
        if let Some(hook) = on_written {
            let report = || hook(&agent, result.as_ref().copied(), took);
            if panic::catch_unwind(AssertUnwindSafe(report)).is_err() {
                tracing::warn!(agent = %agent, "KV persist completion hook panicked");
            }
        }
        finish_job(shared, &result, took);
    }
}

/// Wait for the next record to settle (or for a flush or shutdown);
/// `None` when closing with nothing left.
fn next_job(shared: &Shared) -> Option<Pending> {
    let mut q = shared.lock();
    loop {
        let urgent = q.closing || q.flushing > 0;
        let Some(agent) = q.order.front().cloned() else {
            if q.closing {
                return None;
            }
            q = shared.work.wait(q).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        let Some(since) = q.pending.get(&agent).map(|p| p.since) else {
            q.order.pop_front(); // cancelled
            continue;
        };
        let waited = since.elapsed();
        if !urgent && waited < SETTLE {
            let (guard, _) = shared
                .work
                .wait_timeout(q, SETTLE - waited)
                .unwrap_or_else(PoisonError::into_inner);
            q = guard;
            continue;
        }
        q.order.pop_front();
        if let Some(pending) = q.pending.remove(&agent) {
            q.in_flight = Some(pending.oldest_seq);
            return Some(pending);
        }
    }
}

fn finish_job(shared: &Shared, result: &Result<u64, StoreError>, took: Duration) {
    let mut q = shared.lock();
    q.in_flight = None;
    match result {
        Ok(bytes) => {
            q.stats.written += 1;
            q.stats.bytes_written += bytes;
        }
        Err(_) => q.stats.failed += 1,
    }
    q.stats.last_write = Some(took);
    drop(q);
    shared.progress.notify_all();
}
