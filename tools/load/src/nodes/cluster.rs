//! The processes of a `nodes` run: one Redis that keeps nothing on disk and N `dispatchd`
//! nodes on it, each with `[cluster]` on and an id of its own, started from the same
//! binary and settings (chaos/procs.rs starts each process).

use crate::chaos::procs::{free_port, kill9, signal, wait_ready, Engine, Redis};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

pub const PREFIX: &str = "nodes:";

/// Node `i`'s id in leases and announcements.
pub fn node_id(i: usize) -> String {
    format!("n{}", i + 1)
}

/// Which node index an id names (`n3` → 2), if it is one of ours.
pub fn node_index(id: &str, nodes: usize) -> Option<usize> {
    let i: usize = id.strip_prefix('n')?.parse().ok()?;
    (1..=nodes).contains(&i).then(|| i - 1)
}

pub struct Node {
    pub url: String,
    child: Child,
}

impl Node {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

pub struct Cluster {
    pub redis: Redis,
    pub nodes: Vec<Node>,
    pub dispatcher: String,
}

/// Settings every node shares: the Redis store on one prefix, cluster on, offers at once
/// (`nearest`), no demo city, request limits out of the way (the run measures the engine,
/// not its rate limiting), a short shutdown.
fn shared_env(redis_url: &str, dispatcher: &str) -> Vec<(String, String)> {
    [
        ("DISPATCH_STORE__BACKEND", "redis"),
        ("DISPATCH_STORE__REDIS_URL", redis_url),
        ("DISPATCH_STORE__REDIS_PREFIX", PREFIX),
        ("DISPATCH_CLUSTER__ENABLED", "true"),
        ("DISPATCH_DISPATCH__POLICY", "nearest"),
        ("DISPATCH_DEMO__ENABLED", "false"),
        ("DISPATCH_INGEST__OSMAND_BIND", ""),
        ("DISPATCH_AUTH__DISPATCHER_TOKEN", dispatcher),
        ("DISPATCH_RATE_LIMIT__PER_TOKEN_PER_S", "100000"),
        ("DISPATCH_RATE_LIMIT__PER_TOKEN_BURST", "100000"),
        ("DISPATCH_RATE_LIMIT__AUTH_PER_IP_PER_MINUTE", "100000"),
        ("DISPATCH_SERVER__SHUTDOWN_TIMEOUT_S", "2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl Cluster {
    /// Starts Redis and `n` nodes (logs under `dir`), and waits until every node answers
    /// `/readyz`.
    pub async fn start(bin: &Path, n: usize, dir: &Path, http: &reqwest::Client) -> Cluster {
        let redis = Redis::start_volatile(dir);
        let dispatcher = format!("nodes-{:016x}", rand::random::<u64>());
        let env = shared_env(&redis.url(), &dispatcher);
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let log_dir: PathBuf = dir.join(node_id(i));
            std::fs::create_dir_all(&log_dir)
                .unwrap_or_else(|e| super::fail(&format!("{}: {e}", log_dir.display())));
            let mut env = env.clone();
            env.push(("DISPATCH_CLUSTER__NODE_ID".into(), node_id(i)));
            let mut engine = Engine {
                bin: bin.to_path_buf(),
                port: free_port(),
                env,
                log_dir,
                starts: 0,
            };
            let child = engine.spawn();
            nodes.push(Node {
                url: engine.url(),
                child,
            });
        }
        for (i, node) in nodes.iter().enumerate() {
            if wait_ready(http, &node.url, Duration::from_secs(60))
                .await
                .is_none()
            {
                super::fail(&format!(
                    "node {} was not ready in 60 s (logs in {})",
                    node_id(i),
                    dir.display()
                ));
            }
        }
        Cluster {
            redis,
            nodes,
            dispatcher,
        }
    }

    /// Every process of the run: the nodes, then Redis.
    pub fn pids(&self) -> Vec<u32> {
        let mut p: Vec<u32> = self.nodes.iter().map(Node::pid).collect();
        p.push(self.redis.pid());
        p
    }

    /// SIGTERM to every node (they release their leases), SIGKILL to any still running
    /// after 5 s; Redis goes when the cluster is dropped.
    pub fn stop(mut self) {
        for n in &self.nodes {
            signal(n.pid(), libc::SIGTERM);
        }
        let t = Instant::now();
        for n in &mut self.nodes {
            loop {
                match n.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if t.elapsed() > Duration::from_secs(5) => {
                        kill9(&mut n.child);
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_round_trip() {
        assert_eq!(node_id(0), "n1");
        assert_eq!(node_index(&node_id(2), 3), Some(2));
        assert_eq!(node_index("n4", 3), None);
        assert_eq!(node_index("n0", 3), None);
        assert_eq!(node_index("node-a", 3), None);
    }
}
