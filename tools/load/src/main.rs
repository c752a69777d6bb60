//! dispatch-load: load tools for a running dispatchd (loopback only).
//!
//! - `idle-riders`: N riders, each with an open rider socket that went online and sent one
//!   fix; reports the server's RSS before and after, per socket.
//! - `connect-storm`: N riders connecting at once; time until each has its `welcome`.
//! - `flood`: K dispatcher sockets that never read while the server pushes updates; samples
//!   the server's RSS every second. Run the server with a big demo city and a short
//!   `dashboard.update_interval_ms` so it has plenty to push.
//! - `city`: a city at scale (src/city/): N rider sockets over several local source
//!   addresses sending moving fixes at a total rate, merchants and customers placing,
//!   paying and accepting orders at a rate over REST, riders accepting offers and
//!   delivering, health probes every 200 ms; one line every `--interval-s`, a Markdown
//!   summary, and with `--csv PATH` a CSV.
//!
//! - `seed-redis`: riders, merchants and live orders written straight into Redis under a
//!   prefix, in the engine's own format (src/seed.rs), for a server to recover.
//! - `recover-time`: starts the server on such a store (after kill -9 of a running one),
//!   times spawn → first `/readyz` 200 run after run, checks what came back (src/recover.rs).
//!
//! - `nodes`: the same city load against 1, 2, 3… engine nodes sharing one Redis, each
//!   spawned by the tool; delivered orders per second, offer and REST latency split by
//!   whether they crossed nodes (src/nodes/).
//!
//! - `auth-flood`: sign-ups then logins, many at once, while an unrelated request is timed;
//!   the server's RSS before, at its peak and after (src/auth_flood.rs).
//!
//! They read the server's RSS (and `city` its CPU time) from /proc/<pid>, so run them on
//! the server's machine.
//!
//! ## `city` measures
//! - **Offer latency**: from just before the merchant's `POST /orders/{id}/accept` is sent
//!   to the first `offer` frame naming that order at any rider socket of the tool (the
//!   request, not its response: the offer may arrive first). It is the dispatch latency only
//!   under `dispatch.policy = "nearest"` (server env `DISPATCH_DISPATCH__POLICY=nearest`);
//!   under `batch` (the default) offers are held on purpose until a planning round and the
//!   rider should leave for the food.
//! - **RSS per rider socket**: (server RSS with every socket online − RSS before any socket
//!   connected, the riders already created) ÷ sockets connected.
//! - **Server CPU**: utime + stime of /proc/<pid>/stat over an interval ÷ `_SC_CLK_TCK` ÷
//!   the interval's wall time, in cores.
//!
//! ## `city` CSV columns (`--csv PATH`)
//! One row per interval (`kind` = `interval`: that interval's counts, rates and
//! percentiles), then one `summary` row (the whole measured run: totals, averages,
//! percentiles over the run, RSS at the end, average CPU).
//! - `kind`: `interval` or `summary`; `elapsed_s`: seconds since the measured run started
//!   (summary: its length)
//! - `riders`: rider sockets attempted (riders created); `sockets_open`: open at the row's time
//! - `fixes_per_s_target`, `fixes_per_s`: fixes asked for and sent per second
//! - `orders_per_s_target`, `orders_per_s`: orders asked for and created per second
//! - `orders_accepted`: accepted by their merchant; `orders_dropped`: not placed because
//!   `--max-inflight` orders were already in REST
//! - `offers`: offer frames received; `offer_samples`: orders whose first offer was timed
//! - `offer_p50_ms`, `offer_p99_ms`, `offer_max_ms`: offer latency (above); empty when no sample
//! - `no_offer`: accepted orders that got no offer within `--offer-window-s`
//! - `accept_p99_ms`: round trip of the merchant's accept request
//! - `healthz_p99_ms`, `readyz_p99_ms`, `metrics_p99_ms`: probe latency (whole response)
//! - `delivered`: `delivered` messages sent by riders
//! - `server_rss_mib`: server RSS at the row's time (summary: at the end)
//! - `server_cpu_cores`: server CPU over the interval (summary: the run's average)
//! - `rss_per_rider_kib`: RSS per rider socket (the same on every row of a run)
//! - `errors`: failed connects and REST calls, lost sockets, failed probes and `error`
//!   frames from the server (the summary lists them by kind)

mod auth_flood;
mod chaos;
mod city;
mod nodes;
mod proc;
mod prom;
mod recover;
mod seed;
mod stats;

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use proc::rss_kib;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Cli {
    /// Base URL of the server, e.g. http://127.0.0.1:8080 (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Dispatcher token.
    #[arg(long, default_value = "dev-dispatcher-token")]
    token: String,
    /// Server process id, to read its RSS (idle-riders, flood, city).
    #[arg(long)]
    pid: Option<u32>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    IdleRiders {
        #[arg(long, default_value_t = 10_000)]
        riders: usize,
    },
    /// Riders all connecting at once (a restart's reconnect storm): time until every
    /// socket has its `welcome`, and how many waited past a second (a dropped handshake
    /// costs the client a 1 s SYN retry).
    ConnectStorm {
        #[arg(long, default_value_t = 15_000)]
        riders: usize,
    },
    Flood {
        #[arg(long, default_value_t = 4)]
        sockets: usize,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
    /// A city at scale: rider sockets with moving fixes, orders through REST, riders
    /// working their offers, probes; periodic lines, a summary, a CSV.
    City(city::CityArgs),
    /// Riders, merchants and live orders written straight into Redis in the engine's
    /// format, for a server on that prefix to recover.
    SeedRedis(seed::SeedArgs),
    /// Spawn → first /readyz 200 of a server recovering a Redis store, several runs, each
    /// ended with kill -9; checks the recovered counts.
    RecoverTime(recover::RecoverArgs),
    /// Sign-ups and logins N at a time while an unrelated request is timed; the server's
    /// RSS before, at its peak and after.
    AuthFlood(auth_flood::AuthFloodArgs),
    /// The engine on Redis under load, SIGKILLed again and again, Redis crashed, the engine
    /// stopped past its silence timers; an audit after each blow (lost = 0, timers, two
    /// riders, events). Spawns its own Redis and engine (`--bin`).
    Chaos(chaos::ChaosArgs),
    /// The same city load against 1, 2, 3… engine nodes on one Redis: delivered orders per
    /// second, offer and REST latency split by whether they crossed nodes. Spawns its own
    /// Redis and nodes (`--bin`).
    Nodes(nodes::NodesArgs),
}

/// A host part of a URL that is a loopback address.
fn loopback_url(url: &str) -> bool {
    let host = url
        .split("//")
        .nth(1)
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("")
        .split([':', '/'])
        .next()
        .unwrap_or("");
    host == "127.0.0.1" || host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

fn ws_url(base: &str, path: &str) -> String {
    format!("{}{path}", base.replacen("http", "ws", 1))
}

fn main() {
    let cli = Cli::parse();
    let redis_url = match &cli.cmd {
        Cmd::SeedRedis(a) => Some(&a.redis_url),
        Cmd::RecoverTime(a) => Some(&a.redis_url),
        _ => None,
    };
    if !loopback_url(&cli.url) || redis_url.is_some_and(|u| !loopback_url(u)) {
        eprintln!("dispatch-load only targets loopback addresses");
        std::process::exit(2);
    }
    let pid = || {
        cli.pid.unwrap_or_else(|| {
            eprintln!("--pid (the server's process id) is required for this command");
            std::process::exit(2);
        })
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        match cli.cmd {
            Cmd::IdleRiders { riders } => idle_riders(&cli.url, &cli.token, pid(), riders).await,
            Cmd::ConnectStorm { riders } => connect_storm(&cli.url, &cli.token, riders).await,
            Cmd::Flood { sockets, seconds } => {
                flood(&cli.url, &cli.token, pid(), sockets, seconds).await
            }
            Cmd::City(args) => city::run(&cli.url, &cli.token, pid(), args).await,
            Cmd::SeedRedis(args) => seed::run(args).await,
            Cmd::RecoverTime(args) => recover::run(&cli.token, args).await,
            Cmd::AuthFlood(args) => auth_flood::run(&cli.url, pid(), args).await,
            Cmd::Chaos(args) => chaos::run(args).await,
            Cmd::Nodes(args) => nodes::run(args).await,
        }
    });
}

/// Creates `n` riders over REST, 200 at a time; returns their tokens.
async fn create_riders(url: &str, token: &str, n: usize) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut tokens = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let futs = chunk.iter().map(|i| {
            let http = http.clone();
            async move {
                let r: Value = http
                    .post(format!("{url}/api/v1/riders"))
                    .bearer_auth(token)
                    .json(&json!({"name": format!("load rider {i}")}))
                    .send()
                    .await
                    .expect("create rider")
                    .json()
                    .await
                    .expect("rider json");
                r["token"].as_str().expect("token").to_string()
            }
        });
        tokens.extend(futures_util::future::join_all(futs).await);
    }
    tokens
}

async fn connect_storm(url: &str, token: &str, n: usize) {
    let tokens = create_riders(url, token, n).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let handles: Vec<_> = tokens
        .into_iter()
        .map(|t| {
            let u = ws_url(url, &format!("/ws/rider?token={t}"));
            tokio::spawn(async move {
                let t0 = Instant::now();
                let (mut ws, _) = tokio_tungstenite::connect_async(u).await.ok()?;
                // Connected once the server's first frame (`welcome`) arrives.
                ws.next().await?.ok()?;
                let took = t0.elapsed();
                Some((took, ws))
            })
        })
        .collect();
    let mut took: Vec<f64> = Vec::with_capacity(n);
    let mut open = Vec::with_capacity(n);
    let mut failed = 0;
    for h in handles {
        match h.await.ok().flatten() {
            Some((t, ws)) => {
                took.push(t.as_secs_f64() * 1000.0);
                open.push(ws);
            }
            None => failed += 1,
        }
    }
    let all_s = started.elapsed().as_secs_f64();
    took.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        took.get(((took.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let slow = took.iter().filter(|&&ms| ms > 1000.0).count();
    println!(
        "{} of {n} riders connected in {all_s:.2} s; per socket p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {slow} waited over 1 s; {failed} failed",
        took.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    drop(open);
}

async fn idle_riders(url: &str, token: &str, pid: u32, n: usize) {
    let before = rss_kib(pid);
    println!("server RSS before: {before} KiB");
    let tokens = create_riders(url, token, n).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_riders = rss_kib(pid);
    println!("server RSS with {n} riders (no sockets): {after_riders} KiB");
    let started = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for (i, t) in tokens.into_iter().enumerate() {
        let u = ws_url(url, &format!("/ws/rider?token={t}"));
        handles.push(tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(u).await.expect("connect");
            let lat = 31.0 + (i % 100) as f64 * 0.004;
            let lon = 121.0 + (i / 100) as f64 * 0.004;
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            ws.send(Message::text(
                json!({"type":"status","status":"online"}).to_string(),
            ))
            .await
            .ok();
            ws.send(Message::text(
                json!({"type":"location","lat":lat,"lon":lon,"ts_ms":ts}).to_string(),
            ))
            .await
            .ok();
            // Stay connected and answer pings (tungstenite does when we read).
            while let Some(Ok(_)) = ws.next().await {}
        }));
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = rss_kib(pid);
    println!(
        "server RSS with {n} riders and {n} open rider sockets: {after} KiB (connected in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    println!(
        "per socket: {:.1} KiB; per rider (actor, no socket): {:.1} KiB",
        (after.saturating_sub(after_riders)) as f64 / n as f64,
        (after_riders.saturating_sub(before)) as f64 / n as f64
    );
    print_rider_gauges(url).await;
    for h in handles {
        h.abort();
    }
}

/// The server's own count of riders by status (proves the sockets went online).
async fn print_rider_gauges(url: &str) {
    if let Ok(r) = reqwest::get(format!("{url}/metrics")).await {
        if let Ok(text) = r.text().await {
            for l in text.lines().filter(|l| l.starts_with("dispatch_riders{")) {
                println!("{l}");
            }
        }
    }
}

async fn flood(url: &str, token: &str, pid: u32, sockets: usize, seconds: u64) {
    let mut held = Vec::new();
    println!("t_s,server_rss_kib");
    println!("0,{}", rss_kib(pid));
    for _ in 0..sockets {
        let u = ws_url(url, &format!("/ws/dispatch?token={token}"));
        // Connected and never read: the server's writes back up into its own buffers.
        let (ws, _) = tokio_tungstenite::connect_async(u).await.expect("connect");
        held.push(ws);
    }
    let start = Instant::now();
    for t in 1..=seconds {
        tokio::time::sleep_until((start + Duration::from_secs(t)).into()).await;
        println!("{t},{}", rss_kib(pid));
    }
    // Did the server give up on the sockets? Read what is buffered until the close.
    let mut closed = 0;
    for mut ws in held {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                    closed += 1;
                    break;
                }
                Ok(Some(Ok(_))) => continue,
                Err(_) => break,
            }
        }
    }
    println!("# sockets closed by the server: {closed}/{sockets}");
}
