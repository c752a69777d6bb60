//! When a failed delivery is tried again: exponential backoff with jitter, a cap on the
//! wait and on the number of attempts. Plain arithmetic, so it is tested without a clock.
//! (Retry crates such as `backoff` drive a live retry loop; here the attempt count and the
//! next due time are stored with the delivery and outlive the process, so only the
//! schedule is needed.)

/// The retry schedule of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_ms: u64,
    pub max_ms: u64,
}

impl RetryPolicy {
    /// The wait after `attempts` failed attempts, or None when that was the last one (the
    /// delivery becomes a dead letter). `jitter` in [0, 1) picks a point in the upper half
    /// of the step ("equal jitter"): receivers that failed together (an outage) do not all
    /// come back at once, and no wait is shorter than half its step.
    pub fn delay_ms(&self, attempts: u32, jitter: f64) -> Option<u64> {
        if attempts == 0 || attempts >= self.max_attempts {
            return None;
        }
        let doublings = (attempts - 1).min(63);
        let step = self
            .base_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_ms);
        let half = step / 2;
        let jitter = jitter.clamp(0.0, 1.0);
        Some(step - half + (half as f64 * jitter) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base_ms: 1000,
        max_ms: 5000,
    };

    #[test]
    fn the_wait_doubles_per_attempt_up_to_the_cap() {
        // No jitter: the lower end of each step, half of it.
        let low: Vec<_> = (1..5).map(|n| P.delay_ms(n, 0.0).unwrap()).collect();
        assert_eq!(low, vec![500, 1000, 2000, 2500]);
        // Half jitter: three quarters of each step.
        let mid: Vec<_> = (1..5).map(|n| P.delay_ms(n, 0.5).unwrap()).collect();
        assert_eq!(mid, vec![750, 1500, 3000, 3750]);
    }

    #[test]
    fn jitter_stays_within_the_upper_half_of_the_step() {
        for i in 0..100 {
            let j = f64::from(i) / 100.0;
            let d = P.delay_ms(2, j).unwrap();
            assert!((1000..2000).contains(&d), "{d} for jitter {j}");
        }
        // Out-of-range jitter is clamped, never a wait past the step.
        assert_eq!(P.delay_ms(2, 7.0), Some(2000));
        assert_eq!(P.delay_ms(2, -1.0), Some(1000));
    }

    #[test]
    fn the_last_attempt_gets_no_retry() {
        assert!(P.delay_ms(4, 0.5).is_some());
        assert_eq!(P.delay_ms(5, 0.5), None);
        assert_eq!(P.delay_ms(6, 0.5), None);
        let once = RetryPolicy {
            max_attempts: 1,
            ..P
        };
        assert_eq!(once.delay_ms(1, 0.5), None);
    }

    #[test]
    fn many_attempts_do_not_overflow() {
        let p = RetryPolicy {
            max_attempts: u32::MAX,
            base_ms: u64::MAX / 2,
            max_ms: u64::MAX,
        };
        assert!(p.delay_ms(200, 0.5).is_some());
    }
}
