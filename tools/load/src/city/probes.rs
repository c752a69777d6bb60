//! Health probes: every 200 ms a GET of /healthz, /readyz and /metrics (each on its own
//! schedule, so a slow /metrics does not delay the others), latency recorded; a non-200 or
//! a failure (2 s timeout) is counted as an error. The probes run on a thread and runtime of
//! their own: when the riders' traffic saturates the box, a probe waiting in this tool's
//! busy task queue would time the tool, not the server.

use super::rider::Phase;
use super::Shared;
use crate::stats::bump;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub const ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];
pub const EVERY: Duration = Duration::from_millis(200);

/// Probes every route until the phase leaves `Running`, on the calling thread (give it a
/// thread of its own: `spawn_blocking`).
pub fn run_all(shared: Arc<Shared>, url: String, phase: watch::Receiver<Phase>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the probes");
    rt.block_on(async {
        let http = reqwest::Client::new();
        let probes: Vec<_> = (0..ROUTES.len())
            .map(|i| {
                let (shared, http, url, phase) =
                    (shared.clone(), http.clone(), url.clone(), phase.clone());
                tokio::spawn(probe(shared, http, url, i, phase))
            })
            .collect();
        for p in probes {
            let _ = p.await;
        }
    });
}

/// Probes route `ROUTES[i]` until the phase leaves `Running`.
async fn probe(
    shared: Arc<Shared>,
    http: reqwest::Client,
    url: String,
    i: usize,
    mut phase: watch::Receiver<Phase>,
) {
    let target = format!("{url}{}", ROUTES[i]);
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = phase.changed() => {
                if r.is_err() || *phase.borrow_and_update() != Phase::Running {
                    return;
                }
                continue;
            }
        }
        let t0 = Instant::now();
        let res = http
            .get(&target)
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        let ok = match res {
            // Read the whole body: /metrics is measured until its last byte.
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
            Ok(r) => {
                shared
                    .counters
                    .note(format!("probe {}: {}", ROUTES[i], r.status().as_u16()));
                false
            }
            Err(e) => {
                let why = if e.is_timeout() {
                    "timeout"
                } else {
                    "transport"
                };
                shared.counters.note(format!("probe {}: {why}", ROUTES[i]));
                false
            }
        };
        if ok {
            shared.probes[i].record(t0.elapsed());
        } else {
            bump(&shared.counters.probe_failed);
        }
    }
}
