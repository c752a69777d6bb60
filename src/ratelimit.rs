//! Rate limits. Per client IP, per token holder and per IP for logins: keyed limiters on
//! the `governor` crate (GCRA: a sustained rate with a burst, one state per key, idle keys
//! swept). Per rider socket: a plain token bucket owned by the socket's task (no key, no
//! lock on the GPS path).

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    tokens: f64,
    refill_per_s: f64,
    last: Instant,
}

impl TokenBucket {
    /// `n` events per `per`, with a burst of `n`.
    pub fn new(n: u32, per: Duration) -> Self {
        Self::with_burst(n, per, n)
    }

    /// `n` events per `per` sustained, up to `burst` at once.
    pub fn with_burst(n: u32, per: Duration, burst: u32) -> Self {
        let burst = burst.max(1) as f64;
        Self {
            capacity: burst,
            tokens: burst,
            refill_per_s: n as f64 / per.as_secs_f64().max(0.001),
            last: Instant::now(),
        }
    }

    pub fn try_take(&mut self) -> bool {
        self.try_take_at(Instant::now())
    }

    pub fn try_take_at(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.refill_per_s).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// `n` per `per` sustained, `burst` at once (each at least 1).
pub fn quota(n: u32, per: Duration, burst: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    let period = (per / n.get()).max(Duration::from_nanos(1));
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(n))
        .allow_burst(burst)
}

/// Checks this many times between sweeps of keys whose state has gone back to full.
const SWEEP_EVERY: u64 = 10_000;

/// One limiter per key (client IP, token holder).
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    /// Reads the same time source as the limiter's own (quanta's global calibration).
    clock: DefaultClock,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn new(quota: Quota) -> Self {
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Ok, or how long until `key` may try again (at least a second: it is what
    /// `Retry-After` says).
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            // Keys back at a full burst are indistinguishable from new ones: forget them,
            // so the map holds only recently active keys.
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            not_until
                .wait_time_from(self.clock.now())
                .max(Duration::from_secs(1))
        })
    }

    pub fn allow(&self, key: &K) -> bool {
        self.check(key).is_ok()
    }

    /// Keys with state (tests, metrics).
    pub fn keys(&self) -> usize {
        self.limiter.len()
    }
}

/// Whole seconds for `Retry-After`, rounded up.
pub fn retry_after_s(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills() {
        let mut b = TokenBucket::new(10, Duration::from_secs(10));
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(b.try_take_at(t0));
        }
        assert!(!b.try_take_at(t0));
        assert!(b.try_take_at(t0 + Duration::from_millis(1100)));
        assert!(!b.try_take_at(t0 + Duration::from_millis(1100)));
    }

    #[test]
    fn keyed_limiter_separates_keys_and_says_when() {
        let l = KeyedLimiter::new(quota(1, Duration::from_secs(60), 1));
        assert!(l.allow(&"a"));
        let wait = l.check(&"a").unwrap_err();
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert_eq!(retry_after_s(wait), wait.as_secs() + 1);
        assert!(l.allow(&"b"));
        assert_eq!(l.keys(), 2);
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let l = KeyedLimiter::new(quota(10, Duration::from_secs(1), 3));
        for _ in 0..3 {
            assert!(l.allow(&1));
        }
        let wait = l.check(&1).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1), "at least a second is advised");
    }
}
