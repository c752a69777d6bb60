//! Engine time. Timestamps (`*_ms`) are derived from tokio's monotonic clock anchored to
//! the wall clock at start, so the whole engine — timers *and* timestamps — runs under
//! tokio's paused clock in tests and in replays.

use std::time::{SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base_ms: u64,
    base_instant: Instant,
}

impl Clock {
    /// Anchors engine time to the current wall clock.
    pub fn system() -> Self {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self::starting_at(wall_ms)
    }

    /// Anchors engine time to `base_ms` now (tests and replays).
    pub fn starting_at(base_ms: u64) -> Self {
        Self {
            base_ms,
            base_instant: Instant::now(),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.base_ms + self.base_instant.elapsed().as_millis() as u64
    }
}
