//! The `dispatchd` binary as a child process on a Redis of the test's choosing, the
//! test's own Redis (for outages), and small Redis helpers for looking at what was stored.

use crate::support::{Api, Rider};
use dispatch_actors::store::redis::{RedisConfig, RedisStore};
use redis::aio::MultiplexedConnection;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const DISPATCHER: &str = "redis-test-dispatcher";
pub const MAIN_REDIS: &str = "redis://127.0.0.1:6379/0";
/// How long a test waits for a frame: these tests run whole processes and Redis beside
/// the compiler, so they are given more time than the in-process API tests.
pub const WAIT: Duration = Duration::from_secs(10);

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A key prefix no other test (or run) uses.
pub fn unique_prefix() -> String {
    format!(
        "dispatch-test:{}-{}-{}:",
        std::process::id(),
        crate::support::now_ms() % 1_000_000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// These tests need the Redis that `.ci/run` starts; say so plainly when it is missing.
pub fn require_redis() {
    let up = Command::new("redis-cli")
        .arg("ping")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"));
    assert!(
        up,
        "these tests need Redis on 127.0.0.1:6379 and redis-server/redis-cli on PATH \
         (.ci/run starts it; or: redis-server --daemonize yes --save '' --appendonly no)"
    );
}

/// One `dispatchd` process.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// Starts the binary with the redis backend on `prefix`; returns once it has bound.
    pub fn start(redis_url: &str, prefix: &str, env: &[(&str, &str)]) -> Server {
        require_redis();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dispatchd"));
        cmd.env("DISPATCH_STORE__BACKEND", "redis")
            .env("DISPATCH_STORE__REDIS_URL", redis_url)
            .env("DISPATCH_STORE__REDIS_PREFIX", prefix)
            .env("DISPATCH_SERVER__BIND", "127.0.0.1:0")
            .env("DISPATCH_DEMO__ENABLED", "false")
            .env("DISPATCH_INGEST__OSMAND_BIND", "127.0.0.1:0")
            // These tests drive orders as fast as they can to hit outages and kills
            // mid-write; the per-holder request limit is not what they test.
            .env("DISPATCH_RATE_LIMIT__PER_TOKEN_PER_S", "100000")
            .env("DISPATCH_RATE_LIMIT__PER_TOKEN_BURST", "100000")
            .env("DISPATCH_AUTH__DISPATCHER_TOKEN", DISPATCHER)
            .env("RUST_LOG", "info,dispatch_actors=info,actix_server=warn")
            .env_remove("LOG_FORMAT")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("dispatchd starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.trim().to_string());
                    }
                }
                if line.contains("recovered from redis") || line.contains("panicked") {
                    eprintln!("[dispatchd] {line}");
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("dispatchd logs its address");
        Server { child, base }
    }

    /// Starts it (see `start`) and waits until `/readyz` answers 200.
    pub async fn start_ready(redis_url: &str, prefix: &str, env: &[(&str, &str)]) -> Server {
        let s = Server::start(redis_url, prefix, env);
        s.wait_ready(Duration::from_secs(10)).await;
        s
    }

    /// A client for this server's API.
    pub fn api(&self) -> Api {
        Api::new(&self.base, DISPATCHER)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`): the process freezes as a paused VM or a long
    /// GC would, sockets open, timers stopped.
    pub fn freeze(&self, stop: bool) {
        let sig = if stop { "-STOP" } else { "-CONT" };
        let ok = Command::new("kill")
            .arg(sig)
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {}", self.child.id());
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub async fn wait_ready(&self, within: Duration) {
        let c = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = c.get(self.url("/readyz")).send().await {
                if r.status() == reqwest::StatusCode::OK {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "not ready within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A store on `url` under `prefix`, as the server opens it.
pub fn open_store(url: &str, prefix: &str) -> RedisStore {
    RedisStore::open(RedisConfig {
        url: url.into(),
        prefix: prefix.into(),
        ..Default::default()
    })
    .unwrap()
}

/// A prefix of the test's own on the main Redis, and the guard that deletes its keys.
pub fn fresh_keys() -> (String, Cleanup) {
    let prefix = unique_prefix();
    let cleanup = Cleanup::new(MAIN_REDIS, &prefix);
    (prefix, cleanup)
}

/// Deletes the test's keys when it ends, however it ends.
pub struct Cleanup(Option<RedisStore>);

impl Cleanup {
    pub fn new(url: &str, prefix: &str) -> Cleanup {
        Cleanup(Some(open_store(url, prefix)))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            let handle = tokio::runtime::Handle::current();
            let _ = std::thread::spawn(move || {
                let _ = handle.block_on(s.delete_all());
            })
            .join();
        }
    }
}

pub async fn connect(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// `HGET key field`.
pub async fn hget<T: redis::FromRedisValue>(
    conn: &mut MultiplexedConnection,
    key: String,
    field: &str,
) -> T {
    redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query_async(conn)
        .await
        .unwrap()
}

/// `ZSCORE key member` (a deadline's due time in the timers set).
pub async fn zscore(conn: &mut MultiplexedConnection, key: String, member: String) -> Option<u64> {
    redis::cmd("ZSCORE")
        .arg(key)
        .arg(member)
        .query_async(conn)
        .await
        .unwrap()
}

/// A new rider that connects and goes online at `at`, without waiting to be listed
/// (dispatch may first run before the matcher knows it).
pub async fn new_rider_online(api: &Api, at: (f64, f64)) -> Rider {
    let mut r = api.rider_connected().await;
    r.online().await;
    r.move_to(at).await;
    r
}

/// A rider connected with an existing token that goes online at `at`.
pub async fn rider_online(api: &Api, id: &str, token: &str, at: (f64, f64)) -> Rider {
    let (mut r, _) = api.rider_socket(id, token).await;
    r.online().await;
    r.move_to(at).await;
    r
}

/// The rider takes the order it is offered next: accept, then `assigned`.
pub async fn take_next(r: &mut Rider, order_id: &str) -> Value {
    let offer = r.ws.recv_type("offer", WAIT).await;
    assert_eq!(offer["order_id"], order_id);
    r.send_accept(&offer).await;
    r.ws.recv_type("assigned", WAIT).await;
    offer
}

/// The rider reports `kind` about the order and reads the `order_updated` answer.
pub async fn report(r: &mut Rider, kind: &str, order_id: &str) -> Value {
    r.report(kind, order_id).await;
    r.ws.recv_type("order_updated", WAIT).await
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Redis of the test's own, with an append-only file so a stop loses nothing.
pub struct OwnRedis {
    port: u16,
    dir: std::path::PathBuf,
}

impl OwnRedis {
    pub fn start() -> OwnRedis {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("dispatch-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let r = OwnRedis { port, dir };
        r.run();
        r
    }

    pub fn run(&self) {
        let st = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--daemonize", "yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-server on PATH");
        assert!(st.success());
        self.wait_until(true, "start");
    }

    fn ping(&self) -> bool {
        self.cli(&["ping"])
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
    }

    fn cli(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
    }

    /// Polls until it answers pings (`up`) or stops answering.
    fn wait_until(&self, up: bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.ping() != up {
            assert!(Instant::now() < deadline, "own redis did not {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it (the append-only file keeps what it acknowledged).
    pub fn stop(&self) {
        let _ = self.cli(&["shutdown"]);
        self.wait_until(false, "stop");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.cli(&["shutdown", "nosave"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
