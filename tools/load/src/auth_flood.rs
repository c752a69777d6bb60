//! `auth-flood`: sign-ups, then logins, `--concurrency` at a time, while a probe times an
//! unrelated request (`GET /healthz` by default) every `--probe-interval-ms` and the
//! server's RSS is sampled every 100 ms. Prints RSS before, at its peak and after
//! `--settle-s` of quiet, the probe's p50/p99 idle and under the flood, and how each
//! sign-up and login was answered (201/200, 503 busy, 429 limited, other).

use crate::proc::rss_kib;
use crate::stats::{max_ms, q_ms, Hist};
use clap::Args;
use futures_util::StreamExt;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct AuthFloodArgs {
    /// Sign-ups (`POST /api/v1/customers`), then as many logins of those customers.
    #[arg(long, default_value_t = 200)]
    pub signups: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// The unrelated request timed meanwhile (a path at the server's root).
    #[arg(long, default_value = "/healthz")]
    pub probe_path: String,
    #[arg(long, default_value_t = 20)]
    pub probe_interval_ms: u64,
    /// Seconds of probing before the flood (the idle latency).
    #[arg(long, default_value_t = 3)]
    pub idle_s: u64,
    /// Seconds to wait after the flood before the last RSS reading.
    #[arg(long, default_value_t = 10)]
    pub settle_s: u64,
}

/// How the requests of one phase were answered, by status, and their latency.
#[derive(Default)]
struct Phase {
    statuses: Mutex<BTreeMap<u16, u64>>,
    latency: Hist,
}

impl Phase {
    fn note(&self, status: u16, took: Duration) {
        *self
            .statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(status)
            .or_default() += 1;
        self.latency.record(took);
    }

    fn line(&self, name: &str, wall_s: f64) -> String {
        let h = self.latency.total();
        let statuses = self.statuses.lock().unwrap_or_else(|e| e.into_inner());
        let by: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        format!(
            "{name}: {} in {wall_s:.1} s; answers {{{}}}; latency p50 {} ms, p99 {} ms, max {} ms",
            h.len(),
            by.join(", "),
            fmt(q_ms(&h, 0.5)),
            fmt(q_ms(&h, 0.99)),
            fmt(max_ms(&h)),
        )
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

pub async fn run(url: &str, pid: u32, args: AuthFloodArgs) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(1))
        .build()
        .expect("http client");
    let rss_before = rss_kib(pid);
    let peak = Arc::new(AtomicU64::new(rss_before));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let idle = Arc::new(Hist::default());
    let busy = Arc::new(Hist::default());
    let flooding = Arc::new(AtomicBool::new(false));
    let probe_failed = Arc::new(AtomicU64::new(0));
    let stop_probe = Arc::new(AtomicBool::new(false));
    let prober = {
        let (http, stop, flooding) = (http.clone(), stop_probe.clone(), flooding.clone());
        let (idle, busy, failed) = (idle.clone(), busy.clone(), probe_failed.clone());
        let probe_url = format!("{url}{}", args.probe_path);
        let every = Duration::from_millis(args.probe_interval_ms.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let t0 = Instant::now();
                let ok = match http.get(&probe_url).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let took = t0.elapsed();
                if flooding.load(Ordering::Relaxed) {
                    busy.record(took);
                } else {
                    idle.record(took);
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(args.idle_s)).await;

    let run_id = std::process::id();
    let names: Vec<String> = (0..args.signups)
        .map(|i| format!("flood-{run_id}-{i}"))
        .collect();
    let password = "correct horse battery staple";
    flooding.store(true, Ordering::Relaxed);
    let mut lines = Vec::new();
    for (phase_name, path) in [("sign-ups", "customers"), ("logins", "sessions")] {
        let phase = Phase::default();
        let started = Instant::now();
        futures_util::stream::iter(names.iter())
            .map(|name| {
                let http = http.clone();
                let phase = &phase;
                let target = format!("{url}/api/v1/{path}");
                async move {
                    let t0 = Instant::now();
                    let status = match http
                        .post(target)
                        .json(&json!({"username": name, "password": password}))
                        .send()
                        .await
                    {
                        Ok(r) => {
                            let s = r.status().as_u16();
                            let _ = r.bytes().await;
                            s
                        }
                        Err(_) => 0,
                    };
                    phase.note(status, t0.elapsed());
                }
            })
            .buffer_unordered(args.concurrency.max(1))
            .collect::<Vec<()>>()
            .await;
        lines.push(phase.line(phase_name, started.elapsed().as_secs_f64()));
    }
    stop_probe.store(true, Ordering::Relaxed);
    let _ = prober.await;
    let rss_end = rss_kib(pid);
    tokio::time::sleep(Duration::from_secs(args.settle_s)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let rss_after = rss_kib(pid);

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "auth-flood: {} sign-ups then {} logins, {} at a time",
        args.signups, args.signups, args.concurrency
    );
    for l in lines {
        println!("{l}");
    }
    println!(
        "server RSS: before {:.1} MiB, peak {:.1} MiB, at the end of the flood {:.1} MiB, {} s later {:.1} MiB",
        mib(rss_before),
        mib(peak.load(Ordering::Relaxed)),
        mib(rss_end),
        args.settle_s,
        mib(rss_after)
    );
    let (i, b) = (idle.total(), busy.total());
    println!(
        "probe GET {}: idle p50 {} ms, p99 {} ms ({} samples); during the flood p50 {} ms, p99 {} ms, max {} ms ({} samples); {} failed",
        args.probe_path,
        fmt(q_ms(&i, 0.5)),
        fmt(q_ms(&i, 0.99)),
        i.len(),
        fmt(q_ms(&b, 0.5)),
        fmt(q_ms(&b, 0.99)),
        fmt(max_ms(&b)),
        b.len(),
        probe_failed.load(Ordering::Relaxed)
    );
}
