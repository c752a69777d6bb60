//! A local Redis Cluster for tests: tools/redis-cluster.sh on free ports of its own, in a
//! directory of its own, shut down when dropped. Shared by the store's cluster tests and
//! the server's (tests/redis/cluster.rs includes this file).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};

pub struct TestCluster {
    ports: String,
    dir: PathBuf,
    /// The seed list for `store.redis_url`.
    pub url: String,
}

/// Ports a cluster node may take: the port and its bus port (+10000) free, both below the
/// ephemeral range, so port-0 listeners of other tests never race for them.
fn free_ports(n: usize) -> Vec<u16> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 12_000 + (std::process::id() % 331) as u16 * 30;
    let mut out = Vec::new();
    while out.len() < n {
        let p = 12_000 + (start - 12_000 + NEXT.fetch_add(1, Ordering::SeqCst)) % 9_990;
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(p) && free(p + 10_000) {
            out.push(p);
        }
    }
    out
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("tools/redis-cluster.sh"))
        .find(|p| p.exists())
        .expect("tools/redis-cluster.sh")
}

impl TestCluster {
    /// Starts three masters and waits until every slot is served.
    pub fn start() -> TestCluster {
        let ports: Vec<String> = free_ports(3).iter().map(u16::to_string).collect();
        let ports = ports.join(" ");
        let dir = std::env::temp_dir().join(format!(
            "dispatchd-test-cluster-{}-{}",
            std::process::id(),
            ports.replace(' ', "-")
        ));
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .env("PORTS", &ports)
            .env("DIR", &dir)
            .output()
            .expect("tools/redis-cluster.sh runs");
        let cluster = TestCluster {
            ports,
            dir,
            url: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        };
        assert!(
            out.status.success(),
            "the cluster did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }
}

impl TestCluster {
    /// The masters' ports.
    pub fn ports(&self) -> Vec<u16> {
        self.ports
            .split(' ')
            .map(|p| p.parse().expect("a port"))
            .collect()
    }

    /// Shuts one master down (its data is lost; its slots stay its own).
    pub fn stop_node(&self, port: u16) {
        let _ = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "shutdown", "nosave"])
            .output();
    }

    /// Starts a master stopped with [`stop_node`](Self::stop_node) again, as the script
    /// started it: it rejoins with its slots (from its nodes.conf).
    pub fn start_node(&self, port: u16) {
        let dir = self.dir.join(port.to_string());
        let status = Command::new("redis-server")
            .current_dir(&dir)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args([
                "--cluster-node-timeout",
                "2000",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--protected-mode", "no", "--daemonize", "yes"])
            .arg("--logfile")
            .arg(dir.join("log"))
            .arg("--dir")
            .arg(&dir)
            .status()
            .expect("redis-server runs");
        assert!(status.success(), "the node did not start again");
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .env("PORTS", &self.ports)
            .env("DIR", &self.dir)
            .output();
    }
}
