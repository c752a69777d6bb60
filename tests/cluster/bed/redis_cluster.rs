//! `TestCluster`: a Redis Cluster of masters (tools/redis-cluster.sh) bound to one address,
//! normally a `TestNet`'s bridge address so every namespace reaches it. The masters meet
//! each other at that address, so it is the address the cluster announces in MOVED
//! replies and CLUSTER SLOTS: a client in a namespace can follow them. Stopped on `Drop`.

use super::cmd::signal;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The cluster bus of a master listens on its port + this (Redis's fixed offset).
const BUS_OFFSET: u16 = 10_000;
/// Where the data directories of the test clusters live: `<this><pid>-<seq>`.
const DIR_PREFIX: &str = "dispatchd-test-cluster-";

pub struct TestCluster {
    bind: Ipv4Addr,
    ports: Vec<u16>,
    dir: PathBuf,
    seeds: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/redis-cluster.sh")
}

impl TestCluster {
    /// Starts `masters` masters on `bind` and returns once every slot is served.
    pub fn start(bind: Ipv4Addr, masters: usize) -> TestCluster {
        sweep_dead_clusters();
        let ports = free_ports(bind, masters);
        let dir = std::env::temp_dir().join(format!(
            "{DIR_PREFIX}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let mut cluster = TestCluster {
            bind,
            ports,
            dir,
            seeds: String::new(),
        };
        let out = cluster
            .script_command("start")
            .output()
            .expect("bash runs tools/redis-cluster.sh");
        assert!(
            out.status.success(),
            "tools/redis-cluster.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.seeds = String::from_utf8(out.stdout).unwrap().trim().to_string();
        cluster
    }

    fn script_command(&self, verb: &str) -> Command {
        let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
        let mut c = Command::new("bash");
        c.arg(script())
            .arg(verb)
            .env("BIND", self.bind.to_string())
            .env("PORTS", ports.join(" "))
            .env("DIR", &self.dir);
        c
    }

    /// The seed list for `store.redis_url`: `redis://<bind>:<port>,…`.
    pub fn seeds(&self) -> &str {
        &self.seeds
    }

    /// The masters' client ports.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = self.script_command("stop").output();
    }
}

/// `n` client ports on `bind` that are free, each with its bus port (+10000) free too.
fn free_ports(bind: Ipv4Addr, n: usize) -> Vec<u16> {
    let free = |p: u16| TcpListener::bind((bind, p)).is_ok();
    let start = (std::process::id() as u64 * 7 + SEQ.load(Ordering::Relaxed) * 13) % 10_000;
    let ports: Vec<u16> = (0..10_000u64)
        .map(|k| 20_000 + ((start + k) % 10_000) as u16)
        .filter(|&p| free(p) && free(p + BUS_OFFSET))
        .take(n)
        .collect();
    assert_eq!(ports.len(), n, "no {n} free port pairs on {bind}");
    ports
}

/// Kills the masters of clusters whose test process died without stopping them (their
/// address may be gone with the dead run's bridge, so `redis-cli shutdown` cannot reach
/// them): a master runs with its data directory, `<DIR_PREFIX><pid>-<seq>/<port>`, as its
/// working directory.
fn sweep_dead_clusters() {
    let tmp = std::env::temp_dir();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in procs.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        let Ok(rest) = cwd.strip_prefix(&tmp) else {
            continue;
        };
        let Some(owner) = rest
            .to_str()
            .and_then(|r| r.strip_prefix(DIR_PREFIX))
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{owner}")).exists() {
            let _ = signal(pid, "KILL");
            if let Some(dir) = cwd.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}
