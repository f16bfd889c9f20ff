//! The scheduler's clock: real time in the engine, a clock moved by hand in
//! tests, so the rules that depend on time (a finished turn settles before
//! it is snapshotted; the least recently used agent leaves first) are
//! tested instantly and exactly instead of by sleeping through real time.
//!
//! Only those decisions read this clock. Measurements of real work (step
//! and restore durations for the cost model, request timings) keep reading
//! `Instant::now()`: a test clock must not change what work costs.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// Monotonic and wall time for the scheduler's decisions.
pub trait Clock: Send + Sync {
    /// Monotonic now (settle times).
    fn now(&self) -> Instant;
    /// Wall-clock now (agents' last use, which is also read from files).
    fn wall(&self) -> SystemTime;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that stands still until [`ManualClock::advance`] moves it.
#[derive(Clone, Debug)]
pub struct ManualClock {
    start: Instant,
    wall_start: SystemTime,
    offset: Arc<Mutex<Duration>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            wall_start: SystemTime::now(),
            offset: Arc::new(Mutex::new(Duration::ZERO)),
        }
    }

    /// Move both times forward by `by` (every clone sees it).
    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(PoisonError::into_inner);
        *offset += by;
    }

    fn offset(&self) -> Duration {
        *self.offset.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + self.offset()
    }

    fn wall(&self) -> SystemTime {
        self.wall_start + self.offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let clock = ManualClock::new();
        let (t0, w0) = (clock.now(), clock.wall());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now(), t0);
        let other = clock.clone();
        other.advance(Duration::from_secs(2));
        assert_eq!(clock.now() - t0, Duration::from_secs(2));
        assert_eq!(
            clock.wall().duration_since(w0).ok(),
            Some(Duration::from_secs(2))
        );
    }
}
