//! Settings of the Redis store: where it is, how writes are grouped, and how long an outage
//! is ridden out before callers hear about it.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: String,
    /// Prefix of every key, so tests and several deployments can share one server.
    pub prefix: String,
    /// Most writes in one pipeline. 1 turns group commit off (one round trip per write).
    pub max_batch: usize,
    /// After the first write of a batch, wait this long for others to join (0: take only
    /// what is already queued; batches still form while a pipeline is in flight).
    pub linger: Duration,
    /// Rider positions are flushed this often, latest per rider.
    pub position_flush: Duration,
    /// Approximate length the event stream is trimmed to (`XADD MAXLEN ~`).
    pub event_stream_maxlen: usize,
    /// One Redis round trip longer than this counts as a failure.
    pub op_timeout: Duration,
    /// Retries of a failed pipeline (with backoff) before its callers get `Unavailable`.
    pub retries: u32,
    /// Writes kept for later while Redis is away; beyond, the oldest are dropped (logged).
    pub max_pending: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379/0".into(),
            prefix: "dispatch:".into(),
            max_batch: 512,
            linger: Duration::ZERO,
            position_flush: Duration::from_millis(100),
            event_stream_maxlen: 100_000,
            op_timeout: Duration::from_secs(2),
            retries: 3,
            max_pending: 200_000,
        }
    }
}
