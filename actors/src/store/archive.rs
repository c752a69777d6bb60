//! What the memory store keeps of finished things (final orders, resolved escalations):
//! oldest first, each for a retention period and at most a number of them, so a city that
//! runs for days holds its last hour, not its whole history.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

pub struct Archive<K> {
    retention: Duration,
    max: usize,
    /// Keys in the order they finished, with when.
    queue: VecDeque<(K, Instant)>,
}

impl<K> Archive<K> {
    pub fn new(retention: Duration, max: usize) -> Self {
        Self {
            retention,
            max,
            queue: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Notes `key` as finished now; returns the keys to let go: past retention, or the
    /// oldest over the cap.
    pub fn add(&mut self, key: K, now: Instant) -> Vec<K> {
        self.queue.push_back((key, now));
        let mut out = Vec::new();
        while let Some((_, at)) = self.queue.front() {
            let expired = now.duration_since(*at) >= self.retention;
            if !expired && self.queue.len() <= self.max {
                break;
            }
            if let Some((k, _)) = self.queue.pop_front() {
                out.push(k);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn lets_go_of_the_expired_and_the_oldest_over_the_cap() {
        let mut a = Archive::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        assert!(a.add(1, t0).is_empty());
        assert!(a.add(2, t0 + Duration::from_secs(5)).is_empty());
        assert_eq!(
            a.add(3, t0 + Duration::from_secs(10)),
            vec![1],
            "1 is 10 s old"
        );
        assert!(a.add(4, t0 + Duration::from_secs(11)).is_empty());
        assert_eq!(
            a.add(5, t0 + Duration::from_secs(12)),
            vec![2],
            "over the cap of 3"
        );
        assert_eq!(a.len(), 3);
    }
}
