//! Token buckets: per rider socket (fixes, other messages), per rider (tracking-app fixes)
//! and per IP (login, registration).

use parking_lot::Mutex;
use std::collections::HashMap;
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

/// Buckets by key (client IP, rider id); idle keys are swept so the map stays bounded.
pub struct KeyedLimiter {
    n: u32,
    per: Duration,
    burst: u32,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

impl KeyedLimiter {
    pub fn new(n: u32, per: Duration) -> Self {
        Self::with_burst(n, per, n)
    }

    /// `n` events per `per` sustained per key, up to `burst` at once.
    pub fn with_burst(n: u32, per: Duration, burst: u32) -> Self {
        Self {
            n,
            per,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn allow(&self, key: &str) -> bool {
        let mut b = self.buckets.lock();
        if b.len() > 100_000 {
            let now = Instant::now();
            let per = self.per;
            b.retain(|_, v| now.saturating_duration_since(v.last) < per);
        }
        b.entry(key.to_string())
            .or_insert_with(|| TokenBucket::with_burst(self.n, self.per, self.burst))
            .try_take()
    }
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
    fn keyed_limiter_with_a_burst_allows_the_burst_per_key() {
        let l = KeyedLimiter::with_burst(1, Duration::from_secs(60), 3);
        for _ in 0..3 {
            assert!(l.allow("r_a"));
        }
        assert!(!l.allow("r_a"));
        assert!(l.allow("r_b"));
    }

    #[test]
    fn keyed_limiter_separates_keys() {
        let l = KeyedLimiter::new(1, Duration::from_secs(60));
        assert!(l.allow("a"));
        assert!(!l.allow("a"));
        assert!(l.allow("b"));
    }
}
