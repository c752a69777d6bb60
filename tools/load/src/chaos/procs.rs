//! The processes a chaos run owns: a Redis of its own (AOF on, fsync on every write, so a
//! Redis crash loses nothing it answered) and the engine, both restarted by signal. The
//! `nodes` run borrows them, with a Redis that keeps nothing on disk.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| super::fail(&format!("no free port: {e}")))
}

pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a pid of a child this process spawned.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Sends SIGKILL and reaps the child.
pub fn kill9(child: &mut Child) {
    signal(child.id(), libc::SIGKILL);
    let _ = child.wait();
}

pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    /// AOF with fsync always (a crash loses nothing answered); else nothing on disk.
    persist: bool,
    child: Child,
}

impl Redis {
    pub fn start(dir: &Path) -> Redis {
        Self::start_with(dir, true)
    }

    /// A Redis that writes nothing to disk (no AOF, no snapshots): for runs that measure
    /// the engine, not its durability.
    pub fn start_volatile(dir: &Path) -> Redis {
        Self::start_with(dir, false)
    }

    fn start_with(dir: &Path, persist: bool) -> Redis {
        let port = free_port();
        let child = spawn_redis(dir, port, persist);
        let r = Redis {
            port,
            dir: dir.to_path_buf(),
            persist,
            child,
        };
        r.wait_up();
        r
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A crash (SIGKILL), `down_for` of absence, and a start that replays the AOF.
    pub fn crash_and_restart(&mut self, down_for: Duration) {
        kill9(&mut self.child);
        std::thread::sleep(down_for);
        self.child = spawn_redis(&self.dir, self.port, self.persist);
        self.wait_up();
    }

    fn wait_up(&self) {
        let t = Instant::now();
        let client = redis::Client::open(self.url()).expect("redis url");
        while t.elapsed() < Duration::from_secs(30) {
            if let Ok(mut c) = client.get_connection() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        super::fail("the chaos run's redis-server did not answer within 30 s");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        kill9(&mut self.child);
    }
}

fn spawn_redis(dir: &Path, port: u16, persist: bool) -> Child {
    let log = File::create(dir.join("redis.log")).expect("redis log");
    let aof: &[&str] = if persist {
        &["--appendonly", "yes", "--appendfsync", "always"]
    } else {
        &["--appendonly", "no"]
    };
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(aof)
        .args(["--save", ""])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| super::fail(&format!("redis-server: {e}")))
}

/// How the engine is started each time: the same binary, port, store and settings.
pub struct Engine {
    pub bin: PathBuf,
    pub port: u16,
    pub env: Vec<(String, String)>,
    pub log_dir: PathBuf,
    pub starts: u32,
}

impl Engine {
    pub fn spawn(&mut self) -> Child {
        self.starts += 1;
        let log = File::create(self.log_dir.join(format!("engine-{:03}.log", self.starts)))
            .expect("engine log");
        let mut cmd = Command::new(&self.bin);
        cmd.env("DISPATCH_SERVER__BIND", format!("127.0.0.1:{}", self.port));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| super::fail(&format!("{}: {e}", self.bin.display())))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Polls `/readyz` until 200; the time it took, or None past `timeout`.
pub async fn wait_ready(http: &reqwest::Client, url: &str, timeout: Duration) -> Option<f64> {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if let Ok(r) = http.get(format!("{url}/readyz")).send().await {
            if r.status().is_success() {
                return Some(t.elapsed().as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}
