//! `chaos`: the engine on a Redis store under load, killed and disturbed on purpose, and
//! audited after every blow (docs/reliability.md, "Chaos run").
//!
//! The run owns its processes: a Redis of its own (AOF, fsync always) and the engine
//! (`--bin`). Riders (sockets) and orders (REST) run through it all, as apps would:
//! requests retried with their idempotency keys, sockets reconnecting. Then, `--kills`
//! times, after a random 1–6 s of load: SIGKILL the engine and start it again. Spread over
//! the run, `--redis-restarts` Redis crashes (SIGKILL, AOF replay) and `--stops` SIGSTOPs
//! of the engine longer than its rider silence timers. After each: the order audit
//! (audit.rs) against every state a client was told. At the end, orders stop, the
//! riders finish what they hold, and the full audit adds the rider records and the event
//! stream. Exits 1 on any violation.

mod audit;
mod clients;
mod ledger;
pub(crate) mod procs;

use clients::World;
use procs::{wait_ready, Engine, Redis};
use rand::Rng;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(clap::Args, Debug)]
pub struct ChaosArgs {
    /// The engine binary.
    #[arg(long, default_value = "target/release/dispatchd")]
    pub bin: PathBuf,
    /// SIGKILLs of the engine (each followed by a restart and an audit).
    #[arg(long, default_value_t = 50)]
    pub kills: usize,
    /// Crashes of Redis (SIGKILL, then a restart that replays its AOF).
    #[arg(long, default_value_t = 2)]
    pub redis_restarts: usize,
    /// SIGSTOPs of the engine for `--stop-s`, past its rider silence timers.
    #[arg(long, default_value_t = 1)]
    pub stops: usize,
    #[arg(long, default_value_t = 12)]
    pub stop_s: u64,
    #[arg(long, default_value_t = 30)]
    pub riders: usize,
    #[arg(long, default_value_t = 6)]
    pub merchants: usize,
    #[arg(long, default_value_t = 6)]
    pub customers: usize,
    #[arg(long, default_value_t = 4.0)]
    pub orders_per_s: f64,
    /// Load between two blows: uniform in [--min-up-s, --max-up-s].
    #[arg(long, default_value_t = 1.0)]
    pub min_up_s: f64,
    #[arg(long, default_value_t = 6.0)]
    pub max_up_s: f64,
    /// After the last blow: how long the riders may take to finish the orders in hand.
    #[arg(long, default_value_t = 120)]
    pub drain_s: u64,
    /// Where the run keeps Redis' files and the engine's logs (default: a new temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub(crate) fn fail(msg: &str) -> ! {
    eprintln!("chaos: {msg}");
    std::process::exit(2);
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Blow {
    Kill,
    RedisCrash,
    Stop,
}

/// The blows in order: kills, with the Redis crashes and the stops spread among them.
fn schedule(kills: usize, redis: usize, stops: usize) -> Vec<Blow> {
    let mut v = vec![Blow::Kill; kills];
    let spread = |v: &mut Vec<Blow>, n: usize, what: Blow| {
        for i in 0..n {
            let at = (v.len() * (i + 1) / (n + 1)).min(v.len());
            v.insert(at, what);
        }
    };
    spread(&mut v, redis, Blow::RedisCrash);
    spread(&mut v, stops, Blow::Stop);
    v
}

const PREFIX: &str = "chaos:";
const AUDIT_SLACK_MS: u64 = 30_000;

fn now_ms() -> u64 {
    crate::seed::now_ms()
}

struct Tally {
    blows: Vec<(Blow, Option<f64>)>,
    audits: usize,
    violations: Vec<String>,
    max_acked: usize,
}

pub async fn run(a: ChaosArgs) {
    if !a.bin.exists() {
        fail(&format!(
            "{} not found (cargo build --release first)",
            a.bin.display()
        ));
    }
    if a.orders_per_s <= 0.0 || a.riders == 0 || a.merchants == 0 || a.customers == 0 {
        fail("--orders-per-s, --riders, --merchants and --customers must be positive");
    }
    if !(a.min_up_s > 0.0 && a.max_up_s > a.min_up_s) {
        fail("need 0 < --min-up-s < --max-up-s");
    }
    let dir = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("dispatch-chaos-{}", rand::random::<u32>()))
    });
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
    let mut redis = Redis::start(&dir);
    let dispatcher = format!("chaos-{:016x}", rand::random::<u64>());
    let env: Vec<(String, String)> = [
        ("DISPATCH_STORE__BACKEND", "redis".to_string()),
        ("DISPATCH_STORE__REDIS_URL", redis.url()),
        ("DISPATCH_STORE__REDIS_PREFIX", PREFIX.into()),
        ("DISPATCH_STORE__EVENT_STREAM_MAXLEN", "10000000".into()),
        ("DISPATCH_DEMO__ENABLED", "false".into()),
        ("DISPATCH_AUTH__DISPATCHER_TOKEN", dispatcher.clone()),
        ("DISPATCH_DISPATCH__POLICY", "nearest".into()),
        ("DISPATCH_TIMERS__OFFER_TTL_S", "5".into()),
        ("DISPATCH_TIMERS__MERCHANT_ACCEPT_S", "10".into()),
        ("DISPATCH_TIMERS__DISPATCH_REMIND_S", "20".into()),
        ("DISPATCH_TIMERS__PICKUP_LATE_S", "20".into()),
        ("DISPATCH_TIMERS__DELIVERY_TIMEOUT_S", "30".into()),
        ("DISPATCH_TIMERS__RIDER_SILENT_S", "4".into()),
        ("DISPATCH_TIMERS__RIDER_LOST_S", "10".into()),
        ("DISPATCH_INGEST__OSMAND_BIND", String::new()),
        ("DISPATCH_RATE_LIMIT__PER_TOKEN_PER_S", "10000".into()),
        ("DISPATCH_RATE_LIMIT__PER_TOKEN_BURST", "100000".into()),
        ("DISPATCH_SERVER__SHUTDOWN_TIMEOUT_S", "2".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut engine = Engine {
        bin: a.bin.clone(),
        port: procs::free_port(),
        env,
        log_dir: dir.clone(),
        starts: 0,
    };
    let url = engine.url();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("http client");
    let mut child = engine.spawn();
    if wait_ready(&http, &url, Duration::from_secs(60))
        .await
        .is_none()
    {
        fail(&format!(
            "the engine was not ready in 60 s (logs in {})",
            dir.display()
        ));
    }
    let center = (31.23, 121.47);
    println!(
        "# chaos: {} kills, {} Redis crashes, {} SIGSTOPs of {} s; {} riders, {} merchants, \
         {} customers, {} orders/s; engine {} on {url}, files in {}",
        a.kills,
        a.redis_restarts,
        a.stops,
        a.stop_s,
        a.riders,
        a.merchants,
        a.customers,
        a.orders_per_s,
        a.bin.display(),
        dir.display()
    );
    let (merchants, customers, riders) = clients::setup(
        &url,
        &http,
        &dispatcher,
        a.riders,
        a.merchants,
        a.customers,
        center,
    )
    .await;
    let world = Arc::new(World {
        url: url.clone(),
        http: http.clone(),
        ledger: Mutex::new(ledger::Ledger::default()),
        counts: clients::Counts::default(),
        merchants,
        customers,
        center,
    });
    let (stop_orders, orders_rx) = watch::channel(false);
    let (stop_riders, riders_rx) = watch::channel(false);
    let mut rider_tasks = tokio::task::JoinSet::new();
    for (id, token) in riders {
        rider_tasks.spawn(clients::rider(
            world.clone(),
            id,
            token,
            Duration::from_secs(2),
            riders_rx.clone(),
        ));
    }
    let orders = tokio::spawn(clients::order_stream(
        world.clone(),
        a.orders_per_s,
        orders_rx,
    ));
    let rconn = redis::Client::open(redis.url()).expect("redis url");
    let mut tally = Tally {
        blows: Vec::new(),
        audits: 0,
        violations: Vec::new(),
        max_acked: 0,
    };
    let started = Instant::now();
    for (i, blow) in schedule(a.kills, a.redis_restarts, a.stops)
        .into_iter()
        .enumerate()
    {
        let up = rand::thread_rng().gen_range(a.min_up_s..a.max_up_s);
        tokio::time::sleep(Duration::from_secs_f64(up)).await;
        let back_s = strike(blow, &mut child, &mut engine, &mut redis, &http, a.stop_s).await;
        if back_s.is_none() {
            tally
                .violations
                .push(format!("blow {i} ({blow:?}): not ready again within 120 s"));
        }
        tally.blows.push((blow, back_s));
        // Recovery re-arms timers and a restarted socket fleet reconnects: let it land.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let acked = world.ledger.lock().expect("ledger").orders.clone();
        let mut conn = rconn
            .get_connection()
            .unwrap_or_else(|e| fail(&format!("redis: {e}")));
        let au = audit::orders(&mut conn, PREFIX, &acked, now_ms(), AUDIT_SLACK_MS);
        tally.audits += 1;
        tally.max_acked = tally.max_acked.max(au.acked);
        note_violations(&mut tally, &format!("after blow {i} ({blow:?})"), &au);
        println!(
            "{:>4} s  blow {:>2} {:<10} back in {:>6}  acked {:>5}  live {:>4}  lost {}  no timer {}  overdue {}",
            started.elapsed().as_secs(),
            i + 1,
            format!("{blow:?}"),
            back_s.map_or("—".into(), |s| format!("{s:.2} s")),
            au.acked,
            au.live,
            au.lost.len(),
            au.live_without_timer.len(),
            au.overdue.len()
        );
    }
    // The end: no new orders; riders finish what they hold.
    let _ = stop_orders.send(true);
    let _ = orders.await;
    let drain = Instant::now();
    let final_audit = loop {
        let acked = world.ledger.lock().expect("ledger").orders.clone();
        let mut conn = rconn
            .get_connection()
            .unwrap_or_else(|e| fail(&format!("redis: {e}")));
        let au = audit::orders(&mut conn, PREFIX, &acked, now_ms(), AUDIT_SLACK_MS);
        if au.live == 0 || drain.elapsed() > Duration::from_secs(a.drain_s) {
            break (acked, au);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let _ = stop_riders.send(true);
    while rider_tasks.join_next().await.is_some() {}
    let (acked, au) = final_audit;
    let mut conn = rconn
        .get_connection()
        .unwrap_or_else(|e| fail(&format!("redis: {e}")));
    let twice = audit::two_riders(&mut conn, PREFIX);
    let ev = audit::events(&mut conn, PREFIX, &acked);
    procs::signal(child.id(), libc::SIGTERM);
    let _ = child.wait();
    note_violations(&mut tally, "final", &au);
    if au.live > 0 {
        tally.violations.push(format!(
            "final: {} orders still live after {} s of drain",
            au.live, a.drain_s
        ));
    }
    for t in &twice {
        tally
            .violations
            .push(format!("final: held by two riders: {t}"));
    }
    for m in ev.missing.iter().take(20) {
        tally
            .violations
            .push(format!("final: no order_changed for {m}"));
    }
    let wire = {
        let l = world.ledger.lock().expect("ledger");
        (l.double_pickups.clone(), l.stale_acks)
    };
    for o in &wire.0 {
        tally
            .violations
            .push(format!("two riders were told they picked up {o}"));
    }
    let holders = (twice.len(), wire.0.len());
    report(
        &a,
        &tally,
        (&au, &ev),
        &world,
        holders,
        wire.1,
        started.elapsed().as_secs_f64(),
    );
    if !tally.violations.is_empty() {
        for v in tally.violations.iter().take(50) {
            eprintln!("VIOLATION {v}");
        }
        std::process::exit(1);
    }
}

fn note_violations(t: &mut Tally, when: &str, au: &audit::OrderAudit) {
    for l in au.lost.iter().take(10) {
        t.violations.push(format!("{when}: lost {l}"));
    }
    for l in au.live_without_timer.iter().take(10) {
        t.violations
            .push(format!("{when}: live without a timer {l}"));
    }
    for l in au.overdue.iter().take(10) {
        t.violations.push(format!("{when}: timer overdue {l}"));
    }
}

/// One blow; how long until `/readyz` answered 200 again.
async fn strike(
    blow: Blow,
    child: &mut Child,
    engine: &mut Engine,
    redis: &mut Redis,
    http: &reqwest::Client,
    stop_s: u64,
) -> Option<f64> {
    let url = engine.url();
    let t = Instant::now();
    match blow {
        Blow::Kill => {
            procs::kill9(child);
            *child = engine.spawn();
        }
        Blow::RedisCrash => redis.crash_and_restart(Duration::from_secs(2)),
        Blow::Stop => {
            procs::signal(child.id(), libc::SIGSTOP);
            tokio::time::sleep(Duration::from_secs(stop_s)).await;
            procs::signal(child.id(), libc::SIGCONT);
        }
    }
    wait_ready(http, &url, Duration::from_secs(120))
        .await
        .map(|_| t.elapsed().as_secs_f64())
}

fn report(
    a: &ChaosArgs,
    t: &Tally,
    (au, ev): (&audit::OrderAudit, &audit::EventAudit),
    w: &World,
    (twice, wire_doubles): (usize, usize),
    stale_acks: u64,
    wall_s: f64,
) {
    let back = |kind: Blow| -> Vec<f64> {
        t.blows
            .iter()
            .filter(|(b, _)| *b == kind)
            .filter_map(|(_, s)| *s)
            .collect()
    };
    let mut kills = back(Blow::Kill);
    kills.sort_by(f64::total_cmp);
    let q = |v: &[f64], q: f64| {
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    let counts: HashMap<&str, u64> = clients::counts(&w.counts);
    println!("\n## Chaos run: {wall_s:.0} s");
    println!("| check | figure |\n|---|---|");
    println!(
        "| blows | {} SIGKILL, {} Redis crash, {} SIGSTOP of {} s |",
        kills.len(),
        back(Blow::RedisCrash).len(),
        back(Blow::Stop).len(),
        a.stop_s
    );
    println!(
        "| engine ready again after SIGKILL (p50 / max) | {} / {} s |",
        q(&kills, 0.5).map_or("—".into(), |s| format!("{s:.2}")),
        kills.last().map_or("—".into(), |s| format!("{s:.2}"))
    );
    println!("| audits run | {} |", t.audits + 1);
    println!("| orders acknowledged to clients | {} |", au.acked);
    println!(
        "| lost (missing, or behind what was acknowledged) | {} |",
        au.lost.len()
    );
    println!("| final states | {:?} |", au.by_status);
    println!(
        "| live orders without a running timer (any audit) | {} |",
        t.violations
            .iter()
            .filter(|v| v.contains("without a timer") || v.contains("overdue"))
            .count()
    );
    println!(
        "| orders held by two riders (rider records; picked up by two, on the wire) | {twice}; {wire_doubles} |"
    );
    println!(
        "| order_changed events missing | {} of {} statuses checked ({} order_changed in {} entries) |",
        ev.missing.len(),
        ev.statuses_checked,
        ev.order_changed,
        ev.entries
    );
    let mut keys: Vec<_> = counts.keys().copied().collect();
    keys.sort();
    for k in keys {
        println!("| clients: {k} | {} |", counts[k]);
    }
    println!("| clients: acknowledgements older than one already seen | {stale_acks} |");
    let refusals = w.counts.refusals.lock().expect("counts");
    let mut keys: Vec<_> = refusals.keys().collect();
    keys.sort();
    for k in keys {
        println!("| clients: refused: {k} | {} |", refusals[k]);
    }
    println!("| violations | {} |", t.violations.len());
}
