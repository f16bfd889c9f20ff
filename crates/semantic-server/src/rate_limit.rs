//! Request rate limits: a token bucket per API key and one per agent
//! (GCRA, from `governor`), both off unless configured.
//!
//! A refusal is a 429 `rate_limit_error` whose `Retry-After` is governor's
//! wait until the bucket lets the next request through, rounded up to whole
//! seconds. The keyed stores forget idle buckets (`retain_recent`) every
//! [`RETAIN_EVERY`] checks and whenever they hold more than
//! [`MAX_TRACKED_KEYS`], so a client cycling agent ids cannot grow memory
//! without bound.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use semantic_domain::AgentKey;

use crate::auth::Caller;
use crate::error::ApiError;

/// Checks between two sweeps of idle buckets.
pub const RETAIN_EVERY: u64 = 1024;
/// Buckets held before a sweep is forced.
pub const MAX_TRACKED_KEYS: usize = 100_000;

/// Rates in requests per minute; `None` is off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub per_key_per_minute: Option<NonZeroU32>,
    pub per_agent_per_minute: Option<NonZeroU32>,
    /// Requests allowed at once before the rate applies (default: the rate).
    pub burst: Option<NonZeroU32>,
}

/// The live buckets.
#[derive(Default)]
pub struct RateLimits {
    per_key: Option<Limiter<Caller>>,
    per_agent: Option<Limiter<AgentKey>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("per_key", &self.per_key.as_ref().map(|l| l.per_minute))
            .field("per_agent", &self.per_agent.as_ref().map(|l| l.per_minute))
            .finish()
    }
}

impl RateLimits {
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            per_key: config
                .per_key_per_minute
                .map(|rate| Limiter::new(rate, config.burst, "API key")),
            per_agent: config
                .per_agent_per_minute
                .map(|rate| Limiter::new(rate, config.burst, "agent")),
        }
    }

    /// Count one request of `caller` (every caller of a server without
    /// keys shares one bucket).
    pub fn check_key(&self, caller: Caller) -> Result<(), ApiError> {
        match &self.per_key {
            Some(limiter) => limiter.check(&caller),
            None => Ok(()),
        }
    }

    /// Count one request of `agent`; anonymous requests have no agent bucket.
    pub fn check_agent(&self, agent: Option<&AgentKey>) -> Result<(), ApiError> {
        match (&self.per_agent, agent) {
            (Some(limiter), Some(agent)) => limiter.check(agent),
            _ => Ok(()),
        }
    }
}

struct Limiter<K: Hash + Eq + Clone> {
    buckets: DefaultKeyedRateLimiter<K>,
    checks: AtomicU64,
    per_minute: u32,
    /// What one bucket belongs to, for the 429 message.
    what: &'static str,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(per_minute: NonZeroU32, burst: Option<NonZeroU32>, what: &'static str) -> Self {
        let quota = Quota::per_minute(per_minute).allow_burst(burst.unwrap_or(per_minute));
        Self {
            buckets: RateLimiter::keyed(quota),
            checks: AtomicU64::new(0),
            per_minute: per_minute.get(),
            what,
        }
    }

    fn check(&self, key: &K) -> Result<(), ApiError> {
        let outcome = self.buckets.check_key(key);
        self.sweep();
        outcome.map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            // Round up: retrying at the floor would be refused again.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::rate_limited(
                format!(
                    "rate limit of {} requests per minute per {} exceeded; retry after {secs} s",
                    self.per_minute, self.what
                ),
                u32::try_from(secs).unwrap_or(u32::MAX),
            )
        })
    }

    fn sweep(&self) {
        let n = self.checks.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(RETAIN_EVERY) || self.buckets.len() > MAX_TRACKED_KEYS {
            self.buckets.retain_recent();
            self.buckets.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn limits(per_key: u32, per_agent: u32, burst: u32) -> RateLimits {
        RateLimits::new(RateLimitConfig {
            per_key_per_minute: NonZeroU32::new(per_key),
            per_agent_per_minute: NonZeroU32::new(per_agent),
            burst: NonZeroU32::new(burst),
        })
    }

    #[test]
    fn a_key_over_its_burst_is_429_with_retry_after() {
        let l = limits(60, 0, 2);
        assert!(l.check_key(Caller::ApiKey(0)).is_ok());
        assert!(l.check_key(Caller::ApiKey(0)).is_ok());
        let e = l.check_key(Caller::ApiKey(0)).unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.code, Some("rate_limited"));
        // 60/min: one request per second comes back.
        assert_eq!(e.retry_after, Some(1));
        // Buckets are per key.
        assert!(l.check_key(Caller::ApiKey(1)).is_ok());
    }

    #[test]
    fn agents_have_their_own_buckets_and_anonymous_requests_none() {
        let l = limits(0, 1, 0);
        let a = AgentKey::open(semantic_domain::AgentId::parse("a").unwrap());
        let b = AgentKey::open(semantic_domain::AgentId::parse("b").unwrap());
        assert!(l.check_agent(Some(&a)).is_ok());
        let e = l.check_agent(Some(&a)).unwrap_err();
        // 1/min: the next one is a minute away.
        assert!((59..=60).contains(&e.retry_after.unwrap()), "{e:?}");
        assert!(e.message.contains("per agent"), "{}", e.message);
        assert!(l.check_agent(Some(&b)).is_ok());
        for _ in 0..5 {
            assert!(l.check_agent(None).is_ok());
        }
        // Off entirely: never refuses.
        assert!(l.check_key(Caller::Anonymous).is_ok());
    }

    #[test]
    fn idle_buckets_are_swept() {
        let l = Limiter::<u64>::new(NonZeroU32::new(6000).unwrap(), None, "x");
        for i in 0..RETAIN_EVERY - 1 {
            l.check(&i).unwrap();
        }
        assert!(l.buckets.len() > 1);
        std::thread::sleep(std::time::Duration::from_millis(60));
        // The sweep on the next check drops buckets back at a fresh state
        // (burst 6000, each used once, refilled after 10 ms).
        l.check(&u64::MAX).unwrap();
        assert!(l.buckets.len() <= 1, "{}", l.buckets.len());
    }
}
