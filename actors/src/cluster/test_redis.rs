//! Real Redis for the lease tests: the shared one at 127.0.0.1:6379 (a prefix of each
//! test's own), a redis-server of a test's own (which it can pause with SIGSTOP), and a
//! Redis Cluster from tools/redis-cluster.sh.

use crate::store::redis::Leases;
use redis::aio::ConnectionManager;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const SHARED_URL: &str = "redis://127.0.0.1:6379/0";

pub(crate) fn prefix(test: &str) -> String {
    format!("test:{test}:{}:", rand::random::<u64>())
}

pub(crate) async fn manager(url: &str) -> ConnectionManager {
    let client = redis::Client::open(url).unwrap();
    ConnectionManager::new(client)
        .await
        .unwrap_or_else(|e| panic!("redis at {url}: {e}"))
}

/// Leases on the shared Redis under `prefix`.
pub(crate) async fn shared(prefix: &str) -> Leases<ConnectionManager> {
    Leases::new(manager(SHARED_URL).await, prefix)
}

/// Deletes every key under `prefix` on the shared Redis.
pub(crate) async fn clean(prefix: &str) {
    let mut c = manager(SHARED_URL).await;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut c)
            .await
            .unwrap();
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(keys)
                .query_async::<()>(&mut c)
                .await
                .unwrap();
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

fn port_is_free(p: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
}

fn ping(port: u16) -> bool {
    Command::new("redis-cli")
        .args(["-p", &port.to_string(), "ping"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
}

/// A redis-server of the test's own, in the foreground (so its pid is known).
pub(crate) struct OwnRedis {
    child: Child,
    pub(crate) port: u16,
}

impl OwnRedis {
    pub(crate) fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        let r = OwnRedis { child, port };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ping(port) {
            assert!(Instant::now() < deadline, "own redis did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill {sig}");
    }

    /// SIGSTOP: connections stay open, nothing answers.
    pub(crate) fn pause(&self) {
        self.signal("-STOP");
    }

    pub(crate) fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis Cluster of three masters from tools/redis-cluster.sh, on free ports of its own
/// (each with its bus port, +10000, free too), stopped and removed when dropped.
pub(crate) struct OwnCluster {
    ports: String,
    dir: std::path::PathBuf,
    pub(crate) seeds: Vec<String>,
}

fn cluster_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/redis-cluster.sh")
}

impl OwnCluster {
    pub(crate) fn start() -> OwnCluster {
        let base = loop {
            let b = 20_000 + (rand::random::<u16>() % 20_000);
            if (b..b + 3).all(|p| port_is_free(p) && port_is_free(p + 10_000)) {
                break b;
            }
        };
        let ports = format!("{} {} {}", base, base + 1, base + 2);
        let dir = std::env::temp_dir().join(format!("dispatch-leases-cluster-{base}"));
        let mut c = OwnCluster {
            ports,
            dir,
            seeds: Vec::new(),
        };
        let out = c.script("start");
        assert!(
            out.status.success(),
            "redis-cluster.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c.seeds = String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(',')
            .map(str::to_string)
            .collect();
        c
    }

    fn script(&self, what: &str) -> std::process::Output {
        Command::new("bash")
            .arg(cluster_script())
            .arg(what)
            .env("PORTS", &self.ports)
            .env("DIR", &self.dir)
            .output()
            .expect("bash")
    }

    pub(crate) async fn connection(&self) -> redis::cluster_async::ClusterConnection {
        redis::cluster::ClusterClient::new(self.seeds.clone())
            .unwrap()
            .get_async_connection()
            .await
            .expect("a cluster connection")
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = self.script("stop");
    }
}
