//! The store's Redis Cluster connection, opened afresh when it stalls.
//!
//! The cluster client (redis-rs 1.8) can wedge for good after a master goes away and comes
//! back: its slot refresh waits for the lock of its connection map while a reconnect task
//! that was handed that lock is not polled until the refresh is done, so the refresh never
//! ends and every request after it waits forever, without even an error. The store saw it
//! as writes kept during the outage never flushed once the master was back (about one run
//! in eight of the master-away test). The handle notices it (nothing sent for `stall_after`
//! answered, well or with an error) and opens a new connection from the same client; the
//! stalled one ends once its last waiting request is given up by its caller's timeout.
//! Renewals back off (doubling up to a minute) while nothing answers, so a cluster that is
//! really unreachable is not reconnected in a loop.

use crate::metric_names;
use parking_lot::Mutex;
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::RedisResult;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Longest wait between two renewals while nothing answers.
const MAX_BACKOFF_MS: u64 = 60_000;

/// Whether a client has stalled: a plain struct over a millisecond clock, so its policy is
/// tested without a cluster.
#[derive(Debug)]
pub(super) struct Stall {
    stall_after_ms: u64,
    /// When the first request sent since the last answer was sent (None: every request
    /// sent so far was answered). Callers give up on requests (timeouts) and send others:
    /// what counts is that none of them has been answered since.
    unanswered_since_ms: Option<u64>,
    /// No renewal before this (backoff while nothing answers).
    not_before_ms: u64,
    backoff_ms: u64,
}

impl Stall {
    /// `stall_after` zero: never stalled (detection off).
    pub(super) fn new(stall_after: Duration) -> Stall {
        let ms = stall_after.as_millis() as u64;
        Stall {
            stall_after_ms: ms,
            unanswered_since_ms: None,
            not_before_ms: 0,
            backoff_ms: ms,
        }
    }

    /// A request is sent at `now_ms`: true if the connection should be opened afresh first
    /// (nothing sent for `stall_after` has been answered).
    pub(super) fn send(&mut self, now_ms: u64) -> bool {
        if self.stall_after_ms == 0 {
            return false;
        }
        let since = *self.unanswered_since_ms.get_or_insert(now_ms);
        let stalled =
            now_ms.saturating_sub(since) >= self.stall_after_ms && now_ms >= self.not_before_ms;
        if stalled {
            // This request is the first on the new connection.
            self.unanswered_since_ms = Some(now_ms);
            self.not_before_ms = now_ms + self.backoff_ms;
            self.backoff_ms = (self.backoff_ms * 2).min(MAX_BACKOFF_MS.max(self.stall_after_ms));
        }
        stalled
    }

    /// A request was answered (well or with an error): the client is alive.
    pub(super) fn answered(&mut self) {
        self.unanswered_since_ms = None;
        self.not_before_ms = 0;
        self.backoff_ms = self.stall_after_ms;
    }
}

struct Shared {
    client: ClusterClient,
    config: ClusterConfig,
    current: Mutex<ClusterConnection>,
    stall: Mutex<Stall>,
    epoch: Instant,
    /// Bumped at each renewal: a request still waiting on the connection it was sent on
    /// when that one is replaced gives up at once (callers without a timeout of their own
    /// would otherwise wait on the stalled one for good).
    generation: watch::Sender<u64>,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// A cluster connection shared by every clone, replaced in place when it stalls.
#[derive(Clone)]
pub struct ClusterHandle {
    shared: Arc<Shared>,
}

impl ClusterHandle {
    /// Opens without waiting for the cluster (it reconnects by itself). Must be called
    /// inside a tokio runtime.
    pub(super) fn open(
        client: ClusterClient,
        config: ClusterConfig,
        stall_after: Duration,
    ) -> ClusterHandle {
        let conn = client.get_pending_async_connection_with_config(config.clone());
        ClusterHandle {
            shared: Arc::new(Shared {
                client,
                config,
                current: Mutex::new(conn),
                stall: Mutex::new(Stall::new(stall_after)),
                epoch: Instant::now(),
                generation: watch::Sender::new(0),
            }),
        }
    }

    /// Runs one request (which may fan out into several) on the current connection,
    /// counted for stall detection; opens a new connection first if the current one has
    /// stalled. A request whose connection is replaced while it waits fails as an outage
    /// (callers retry or keep the write as when Redis is away).
    pub(super) fn run<'a, T, Fut>(
        &self,
        request: impl FnOnce(ClusterConnection) -> Fut,
    ) -> impl Future<Output = RedisResult<T>> + Send + 'a
    where
        Fut: Future<Output = RedisResult<T>> + Send + 'a,
        T: Send + 'a,
    {
        let shared = self.shared.clone();
        let renew = {
            let now = shared.now_ms();
            shared.stall.lock().send(now)
        };
        let (conn, mut replaced) = {
            let mut current = shared.current.lock();
            if renew {
                shared.generation.send_modify(|g| *g += 1);
                *current = shared
                    .client
                    .get_pending_async_connection_with_config(shared.config.clone());
                metrics::counter!(metric_names::STORE_CLUSTER_RENEWALS_TOTAL).increment(1);
                tracing::warn!(
                    "redis cluster: no answer to anything for a while, connection opened afresh"
                );
            }
            // Subscribed under the lock: a renewal after this one is seen as a change.
            (current.clone(), shared.generation.subscribe())
        };
        let fut = request(conn);
        async move {
            let r = tokio::select! {
                r = fut => r,
                // The sender lives in `shared`, held here: a change is a renewal.
                _ = replaced.changed() => {
                    return Err(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "redis cluster connection opened afresh while waiting",
                    )))
                }
            };
            shared.stall.lock().answered();
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_answered_in_time_never_stall() {
        let mut s = Stall::new(Duration::from_millis(1000));
        for t in (0..10_000).step_by(100) {
            assert!(!s.send(t));
            s.answered();
        }
        // A long idle gap after answers is not a stall.
        assert!(!s.send(100_000));
    }

    #[test]
    fn nothing_answered_is_a_stall_and_renewals_back_off() {
        let mut s = Stall::new(Duration::from_millis(1000));
        assert!(!s.send(0), "the first request");
        assert!(!s.send(500), "unanswered for half the limit");
        assert!(s.send(1000), "unanswered for the whole limit: renew");
        assert!(!s.send(1500), "just renewed");
        assert!(!s.send(1999), "the new connection gets its own limit");
        assert!(s.send(2000), "still nothing: renew again");
        assert!(!s.send(3000), "backing off: not before 2000 + 2000");
        assert!(s.send(4000));
        assert!(!s.send(7999), "backing off: not before 4000 + 4000");
        assert!(s.send(8000));
    }

    #[test]
    fn a_zero_limit_turns_detection_off() {
        let mut s = Stall::new(Duration::ZERO);
        assert!(!s.send(0));
        assert!(!s.send(1_000_000));
    }

    #[test]
    fn requests_given_up_and_sent_again_still_count_from_the_first() {
        // Callers time out and retry (the writer every 2 s, the pinger every 750 ms): a
        // moment with nothing waiting must not hide that nothing was answered.
        let mut s = Stall::new(Duration::from_millis(1000));
        assert!(!s.send(0));
        assert!(!s.send(600));
        assert!(s.send(1000));
    }

    #[test]
    fn an_answer_even_an_error_resets_the_count_and_the_backoff() {
        let mut s = Stall::new(Duration::from_millis(1000));
        s.send(0);
        assert!(s.send(1000));
        assert!(s.send(2000));
        s.answered();
        assert!(!s.send(2100));
        assert!(!s.send(3000), "unanswered only since 2100");
        assert!(s.send(3100), "the backoff started over: 1000 again");
    }
}
