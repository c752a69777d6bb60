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
    /// This process's writer id (order compare-and-set, zone leases, the mesh); empty: a
    /// random one. A node of a cluster uses its `cluster.node_id`.
    pub node_id: String,
    /// On a Redis Cluster: requests waiting and not one answered (not even with an error)
    /// for this long means the client has wedged; its connection is opened afresh
    /// (`cluster_client.rs`). Zero turns this off.
    pub stall_after: Duration,
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
            node_id: String::new(),
            stall_after: Duration::from_secs(6),
        }
    }
}

impl RedisConfig {
    /// Checks `url` and `prefix` without connecting: one URL (`redis://`, `rediss://` or
    /// `unix://`: a plain Redis), or comma-separated `redis://`/`rediss://` seed URLs of one
    /// Redis Cluster (a single seed with a trailing comma; database 0 only, and a prefix
    /// without `{` or `}`, which would change every key's hash tag).
    pub fn check(&self) -> Result<(), String> {
        use redis::IntoConnectionInfo;
        let parse = |s: &str| {
            s.into_connection_info()
                .map_err(|e| format!("store.redis_url: {s:?} is not a Redis URL: {e}"))
        };
        if !super::conn::is_cluster_url(&self.url) {
            let one = self.url.trim();
            if one.is_empty() {
                return Err("store.redis_url is empty".into());
            }
            if !["redis://", "rediss://", "unix://"]
                .iter()
                .any(|p| one.starts_with(p))
            {
                return Err(format!("store.redis_url {one:?} must start with redis://"));
            }
            return parse(one).map(|_| ());
        }
        let seeds = super::conn::seeds(&self.url);
        if seeds.is_empty() {
            return Err("store.redis_url names no cluster seed".into());
        }
        for s in seeds {
            if !s.starts_with("redis://") && !s.starts_with("rediss://") {
                return Err(format!(
                    "store.redis_url: cluster seed {s:?} must start with redis:// \
                     (comma-separated URLs name the seeds of one Redis Cluster)"
                ));
            }
            if parse(s)?.redis_settings().db() != 0 {
                return Err(format!(
                    "store.redis_url: cluster seed {s:?} names a database; a Redis \
                     Cluster has database 0 only"
                ));
            }
        }
        if self.prefix.contains(['{', '}']) {
            return Err(format!(
                "store.redis_prefix {:?} must not contain {{ or }} on a Redis Cluster \
                 (they would change the keys' hash tags)",
                self.prefix
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, prefix: &str) -> Result<(), String> {
        RedisConfig {
            url: url.into(),
            prefix: prefix.into(),
            ..RedisConfig::default()
        }
        .check()
    }

    #[test]
    fn one_url_or_a_seed_list() {
        assert_eq!(check("redis://127.0.0.1:6379/0", "p:"), Ok(()));
        assert_eq!(check("unix:///tmp/redis.sock", "p:"), Ok(()));
        assert_eq!(
            check("redis://10.0.0.1:7001, redis://10.0.0.2:7001", "p:"),
            Ok(())
        );
    }

    #[test]
    fn a_bad_seed_list_says_what_is_wrong() {
        let e = check("redis://a:7001,http://b:7002", "p:").unwrap_err();
        assert!(
            e.contains("\"http://b:7002\" must start with redis://"),
            "{e}"
        );
        let e = check("redis://a:7001,redis://b:7002/3", "p:").unwrap_err();
        assert!(e.contains("database 0 only"), "{e}");
        let e = check("redis://a:7001,redis://b:notaport", "p:").unwrap_err();
        assert!(e.contains("is not a Redis URL"), "{e}");
        let e = check("redis://a:7001,redis://b:7002", "{p}:").unwrap_err();
        assert!(e.contains("hash tags"), "{e}");
        assert!(check(" , ", "p:").unwrap_err().contains("no cluster seed"));
        assert!(check("  ", "p:").unwrap_err().contains("empty"));
        assert_eq!(
            check("redis://a:7001,", "p:"),
            Ok(()),
            "one seed of a cluster"
        );
        assert!(check("localhost:6379", "p:").is_err());
    }
}
