//! `recover-time`: how long a server takes from being started on a Redis store to its
//! first `/readyz` 200, run after run, each ended with kill -9.
//!
//! Each run reads what the store holds (riders, live orders), spawns `--bin` on the Redis
//! backend with `--prefix` (after kill -9 of `--kill-pid`, on the first run), polls
//! `/readyz` every 5 ms from the spawn on, and samples the server's RSS once it is ready.
//! Then it checks that what was stored came back: `/metrics` until `dispatch_riders` (the
//! rider actors' own gauges) adds up to the stored riders and
//! `dispatch_store_recovered{record="orders"}` to the stored live orders ("settled"), and a
//! sample of live orders over REST, each with the status Redis holds. Then kill -9.
//! The server inherits this tool's environment, so `DISPATCH_…` settings pass through.

use crate::proc::rss_kib;
use crate::prom;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct RecoverArgs {
    #[arg(long, default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,
    /// Key prefix of the store (`store.redis_prefix`), as given to `seed-redis`.
    #[arg(long)]
    pub prefix: String,
    /// The server binary.
    #[arg(long, default_value = "target/release/dispatchd")]
    pub bin: PathBuf,
    /// A server already running on this store: kill -9 it before the first run.
    #[arg(long)]
    pub kill_pid: Option<u32>,
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Where the spawned server listens (loopback).
    #[arg(long, default_value = "127.0.0.1:18095")]
    pub bind: String,
    /// Give up on a run when not ready after this long.
    #[arg(long, default_value_t = 300)]
    pub timeout_s: u64,
    /// After ready, how long to wait for the recovered counts to add up.
    #[arg(long, default_value_t = 120)]
    pub settle_timeout_s: u64,
    /// Live orders fetched over REST after each run, their status compared with Redis.
    #[arg(long, default_value_t = 20)]
    pub sample_orders: usize,
}

fn fail(msg: &str) -> ! {
    eprintln!("recover-time: {msg}");
    std::process::exit(2);
}

/// One run's figures.
struct Run {
    ready_s: f64,
    ready_rss_kib: u64,
    settled_s: Option<f64>,
    settled_rss_kib: u64,
}

/// What the store holds that a recovery should bring back.
struct Stored {
    riders: u64,
    orders: u64,
}

fn stored(conn: &mut redis::Connection, prefix: &str) -> Stored {
    let card = |conn: &mut redis::Connection, set: &str| -> u64 {
        redis::cmd("SCARD")
            .arg(format!("{prefix}{set}"))
            .query(conn)
            .unwrap_or_else(|e| fail(&format!("redis: {e}")))
    };
    Stored {
        riders: card(conn, "riders"),
        orders: card(conn, "orders:live"),
    }
}

pub async fn run(token: &str, a: RecoverArgs) {
    if a.runs == 0 {
        fail("--runs must be positive");
    }
    if !a.bin.exists() {
        fail(&format!(
            "no server binary at {} (cargo build --release)",
            a.bin.display()
        ));
    }
    let mut conn = redis::Client::open(a.redis_url.as_str())
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| fail(&format!("redis: {e}")));
    if let Some(pid) = a.kill_pid {
        kill9(pid);
        println!("# killed {pid} with SIGKILL");
    }
    let url = format!("http://{}", a.bind);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|e| fail(&format!("http client: {e}")));
    let mut runs = Vec::with_capacity(a.runs);
    for i in 1..=a.runs {
        let want = stored(&mut conn, &a.prefix);
        if i == 1 {
            println!(
                "# store {:?}: {} riders, {} live orders; server {} on {}",
                a.prefix,
                want.riders,
                want.orders,
                a.bin.display(),
                a.bind
            );
        }
        let (run, log) = one_run(&a, &url, &http, token, &want, &mut conn).await;
        let settled = match run.settled_s {
            Some(s) => format!(
                "settled in {s:.2} s (RSS {:.0} MiB)",
                mib(run.settled_rss_kib)
            ),
            None => "NOT settled".into(),
        };
        println!(
            "run {i}: ready in {:.2} s (RSS {:.0} MiB); {settled}{log}",
            run.ready_s,
            mib(run.ready_rss_kib)
        );
        runs.push(run);
    }
    let mut ready: Vec<f64> = runs.iter().map(|r| r.ready_s).collect();
    let mut settled: Vec<f64> = runs.iter().filter_map(|r| r.settled_s).collect();
    let mut rss: Vec<f64> = runs.iter().map(|r| mib(r.ready_rss_kib)).collect();
    println!(
        "spawn -> first /readyz 200 over {} runs: p50 {:.2} s, max {:.2} s; settled (every rider and order counted) p50 {}, max {}; RSS at ready p50 {:.0} MiB",
        runs.len(),
        p50(&mut ready),
        max(&ready),
        fmt_s(p50(&mut settled)),
        fmt_s(max(&settled)),
        p50(&mut rss)
    );
    if settled.len() < runs.len() {
        std::process::exit(1);
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn p50(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(f64::NAN)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

fn fmt_s(s: f64) -> String {
    if s.is_nan() {
        "-".into()
    } else {
        format!("{s:.2} s")
    }
}

/// Starts the server, times it to ready and settled, checks what came back, kills it.
/// Returns the figures and the server's own recovery log line (if it logged one).
async fn one_run(
    a: &RecoverArgs,
    url: &str,
    http: &reqwest::Client,
    token: &str,
    want: &Stored,
    conn: &mut redis::Connection,
) -> (Run, String) {
    let t0 = Instant::now();
    let mut child = Command::new(&a.bin)
        .env("DISPATCH_STORE__BACKEND", "redis")
        .env("DISPATCH_STORE__REDIS_URL", &a.redis_url)
        .env("DISPATCH_STORE__REDIS_PREFIX", &a.prefix)
        .env("DISPATCH_SERVER__BIND", &a.bind)
        .env("DISPATCH_DEMO__ENABLED", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("{}: {e}", a.bin.display())));
    let pid = child.id();
    let log = watch_log(&mut child);
    let deadline = t0 + Duration::from_secs(a.timeout_s);
    loop {
        let ok = http
            .get(format!("{url}/readyz"))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break;
        }
        if let Ok(Some(st)) = child.try_wait() {
            fail(&format!("the server exited before it was ready ({st})"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            fail(&format!("not ready within {} s", a.timeout_s));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready_s = t0.elapsed().as_secs_f64();
    let ready_rss_kib = rss_kib(pid);
    let (settled_s, counts) = settle(a, url, http, want, t0).await;
    let settled_rss_kib = rss_kib(pid);
    let sampled = sample_orders(a, url, http, token, conn).await;
    let _ = child.kill();
    let _ = child.wait();
    let logged = log
        .recv_timeout(Duration::from_millis(100))
        .map(|l| format!("\n    server: {l}"))
        .unwrap_or_default();
    (
        Run {
            ready_s,
            ready_rss_kib,
            settled_s,
            settled_rss_kib,
        },
        format!("; {counts}; {sampled}{logged}"),
    )
}

/// Polls `/metrics` until the rider gauges add up to the stored riders and the recovered
/// orders to the stored live orders; returns when (since spawn) and what it saw last.
async fn settle(
    a: &RecoverArgs,
    url: &str,
    http: &reqwest::Client,
    want: &Stored,
    t0: Instant,
) -> (Option<f64>, String) {
    let deadline = Instant::now() + Duration::from_secs(a.settle_timeout_s);
    let mut last = String::new();
    loop {
        if let Ok(text) = get_text(http, &format!("{url}/metrics")).await {
            let riders = prom::sum(&text, "dispatch_riders");
            let orders = prom::sample(&text, r#"dispatch_store_recovered{record="orders"}"#);
            last = format!(
                "riders {riders:.0}/{} and orders {}/{} recovered",
                want.riders,
                orders.map_or("-".into(), |o| format!("{o:.0}")),
                want.orders
            );
            if riders == want.riders as f64 && orders == Some(want.orders as f64) {
                return (Some(t0.elapsed().as_secs_f64()), last);
            }
        }
        if Instant::now() > deadline {
            return (None, last);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get_text(http: &reqwest::Client, url: &str) -> Result<String, reqwest::Error> {
    http.get(url).send().await?.text().await
}

/// Fetches `--sample-orders` random live orders over REST: each must answer with the
/// status Redis holds for it.
async fn sample_orders(
    a: &RecoverArgs,
    url: &str,
    http: &reqwest::Client,
    token: &str,
    conn: &mut redis::Connection,
) -> String {
    let ids: Vec<String> = redis::cmd("SRANDMEMBER")
        .arg(format!("{}orders:live", a.prefix))
        .arg(a.sample_orders)
        .query(conn)
        .unwrap_or_default();
    let mut matched = 0;
    let mut mismatches = Vec::new();
    for id in &ids {
        let stored: Option<String> = redis::cmd("HGET")
            .arg(format!("{}order:{id}", a.prefix))
            .arg("status")
            .query(conn)
            .unwrap_or(None);
        let got = http
            .get(format!("{url}/api/v1/orders/{id}"))
            .bearer_auth(token)
            .send()
            .await;
        let status = match got {
            Ok(r) if r.status().is_success() => r
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["status"].as_str().map(str::to_string)),
            _ => None,
        };
        if status.is_some() && status == stored {
            matched += 1;
        } else {
            mismatches.push(format!("{id}: rest {status:?}, redis {stored:?}"));
        }
    }
    let mut s = format!("{matched}/{} sampled orders match over REST", ids.len());
    if !mismatches.is_empty() {
        s.push_str(&format!(" (differ: {})", mismatches.join("; ")));
    }
    s
}

/// Reads the server's stdout on a thread of its own (so its pipe never fills) and hands
/// over its `recovered from redis` line.
fn watch_log(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::{BufRead, BufReader};
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line.contains("recovered from redis") {
                    let _ = tx.send(line.trim().to_string());
                }
            }
        });
    }
    rx
}

/// kill -9 `pid` and wait until it is gone.
fn kill9(pid: u32) {
    // SAFETY: kill has no memory preconditions; a wrong pid fails with ESRCH.
    let r = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    if r != 0 {
        fail(&format!(
            "kill -9 {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        // A child of another shell stays a zombie until reaped: gone enough once its
        // state is Z.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if state
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
        {
            break;
        }
        if t.elapsed() > Duration::from_secs(10) {
            fail(&format!("process {pid} still there 10 s after SIGKILL"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
