//! Restore or recompute? Decided by estimated cost, not by habit.
//!
//! Reusing an agent's saved state costs reading it (from disk) and copying
//! it into the context; recomputing costs prefilling the tokens it holds.
//! Rates start from conservative guesses and follow measurements (an
//! exponential moving average), so the decision adapts to the machine.

/// Measured throughputs used to compare the two costs.
#[derive(Clone, Debug)]
pub struct CostModel {
    prefill_tokens_per_sec: f64,
    restore_bytes_per_sec: f64,
    disk_bytes_per_sec: f64,
    /// Ignore measurements (tests on a fake backend, whose timings are noise).
    frozen: bool,
}

/// Weight of a new measurement in the moving averages.
const ALPHA: f64 = 0.2;

impl Default for CostModel {
    fn default() -> Self {
        Self {
            prefill_tokens_per_sec: 1_000.0,
            restore_bytes_per_sec: 1.0e9,
            disk_bytes_per_sec: 2.0e8,
            frozen: false,
        }
    }
}

fn ema(old: f64, new: f64) -> f64 {
    if new.is_finite() && new > 0.0 {
        old * (1.0 - ALPHA) + new * ALPHA
    } else {
        old
    }
}

impl CostModel {
    /// The default rates, never updated: decisions that do not depend on
    /// how fast the machine ran the last step.
    pub fn frozen() -> Self {
        Self {
            frozen: true,
            ..Self::default()
        }
    }

    pub fn note_prefill(&mut self, tokens: usize, secs: f64) {
        if self.frozen {
            return;
        }
        if tokens >= 32 && secs > 0.0 {
            self.prefill_tokens_per_sec = ema(self.prefill_tokens_per_sec, tokens as f64 / secs);
        }
    }

    pub fn note_restore(&mut self, bytes: usize, secs: f64) {
        if !self.frozen && secs > 0.0 {
            self.restore_bytes_per_sec = ema(self.restore_bytes_per_sec, bytes as f64 / secs);
        }
    }

    pub fn note_disk_read(&mut self, bytes: u64, secs: f64) {
        if !self.frozen && secs > 0.0 {
            self.disk_bytes_per_sec = ema(self.disk_bytes_per_sec, bytes as f64 / secs);
        }
    }

    fn prefill_secs(&self, tokens: usize) -> f64 {
        tokens as f64 / self.prefill_tokens_per_sec
    }

    /// Restoring `bytes` from RAM beats prefilling `tokens`.
    pub fn restore_wins(&self, bytes: u64, tokens: usize) -> bool {
        tokens > 0 && (bytes as f64 / self.restore_bytes_per_sec) < self.prefill_secs(tokens)
    }

    /// Reading `bytes` from disk and restoring them beats prefilling `tokens`.
    pub fn load_wins(&self, bytes: u64, tokens: usize) -> bool {
        let secs =
            bytes as f64 / self.disk_bytes_per_sec + bytes as f64 / self.restore_bytes_per_sec;
        tokens > 0 && secs < self.prefill_secs(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_contexts_restore_and_tiny_ones_recompute() {
        let c = CostModel::default();
        // 2K tokens at ~23 KB each: 47 MB restored in ~50 ms vs 2 s of prefill.
        assert!(c.restore_wins(47_000_000, 2048));
        assert!(c.load_wins(47_000_000, 2048));
        // Nothing to reuse: never restore.
        assert!(!c.restore_wins(1_000, 0));
    }

    #[test]
    fn measurements_move_the_decision() {
        let mut c = CostModel::default();
        for _ in 0..50 {
            c.note_disk_read(1_000_000, 10.0); // a very slow disk: 100 KB/s
        }
        assert!(!c.load_wins(47_000_000, 2048));
        assert!(c.restore_wins(47_000_000, 2048));
    }
}
