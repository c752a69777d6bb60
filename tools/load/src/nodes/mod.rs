//! `nodes`: the same city load against 1, 2, 3… `dispatchd` nodes sharing one Redis
//! (`[cluster]`, docs/cluster.md). The run starts its own Redis (nothing on disk) and
//! `--nodes` nodes from `--bin`, creates merchants at fixed spots of a small city (so they
//! fall in several zones, and every run sees the same ones), customers and riders on the
//! nodes in turn, then for `--seconds`: each rider's socket on a node drawn at random,
//! fixes every `--fix-every-s`, every offer accepted, `picked_up` then `delivered` within
//! `--delivery-s`; orders at `--orders-per-s`, each request of an order (create, pay, the
//! merchant's accept) to a node drawn at random.
//!
//! It reports over the part after `--warmup-s`: orders delivered per second, offer latency
//! (merchant accept sent → the offer frame at the rider, as `city`), split by whether the
//! rider's socket was on the order's node (its zone's lease holder) or another, the REST
//! latency split the same way, and the CPU of every process of the run.

mod cluster;
mod orders;
mod setup;
mod tally;
mod zones;

use crate::city::movement::CityBox;
use crate::city::rest::Merchant;
use crate::city::rider::{self, Phase, RiderSetup};
use crate::city::Shared;
use crate::proc;
use crate::stats::{get, q_ms, Hist};
use cluster::{node_id, Cluster};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tally::{p50_95_99, OfferSplit, OrderPath};
use tokio::sync::{watch, Semaphore};

#[derive(clap::Args, Debug)]
pub struct NodesArgs {
    /// The engine binary.
    #[arg(long, default_value = "target/release/dispatchd")]
    pub bin: PathBuf,
    /// Engine nodes sharing the run's Redis.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// Rider sockets, each on a node drawn at random.
    #[arg(long, default_value_t = 60)]
    pub riders: usize,
    /// Orders created, paid and accepted per second.
    #[arg(long, default_value_t = 4.0)]
    pub orders_per_s: f64,
    /// Length of the run, warm-up included.
    #[arg(long, default_value_t = 45)]
    pub seconds: u64,
    /// The first seconds of the run, left out of the figures (the first deliveries come
    /// `--delivery-s` after the first orders).
    #[arg(long, default_value_t = 12)]
    pub warmup_s: u64,
    /// Merchants (one item each) at fixed spots of the city box.
    #[arg(long, default_value_t = 12)]
    pub merchants: usize,
    /// Orders per customer on average (customers sign up before the run, on the nodes in
    /// turn: registration hashes a password and is slow on purpose).
    #[arg(long, default_value_t = 5)]
    pub orders_per_customer: usize,
    /// Seconds between two fixes of one rider.
    #[arg(long, default_value_t = 3.0)]
    pub fix_every_s: f64,
    /// Seconds from assignment to `delivered` (`picked_up` at about a third of it).
    #[arg(long, default_value_t = 6.0)]
    pub delivery_s: f64,
    /// Orders at most on their way through REST at once; orders due beyond it are dropped.
    #[arg(long, default_value_t = 256)]
    pub max_inflight: usize,
    /// Half the side of the square city, km (3: merchants within 6 km, over several
    /// zones of ~1.4 km edges).
    #[arg(long, default_value_t = 3.0)]
    pub half_km: f64,
    #[arg(long, default_value_t = 31.23)]
    pub center_lat: f64,
    #[arg(long, default_value_t = 121.47)]
    pub center_lon: f64,
    /// Seed of the merchants' spots and of the riders' nodes.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Where Redis' and the nodes' logs go (default: a new temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub(crate) fn fail(msg: &str) -> ! {
    eprintln!("nodes: {msg}");
    std::process::exit(2);
}

/// What the order tasks share.
pub struct Run {
    pub shared: Arc<Shared>,
    pub http: reqwest::Client,
    /// Base URL of each node.
    pub urls: Vec<String>,
    pub merchants: Vec<Merchant>,
    /// The node holding each merchant's zone (where its orders live).
    pub merchant_node: Vec<usize>,
    pub customers: Vec<String>,
    pub city: CityBox,
    /// Each order this run created: its merchant and the node of its accept request.
    pub orders: Mutex<HashMap<String, OrderPath>>,
    /// Order requests answered by the order's own node, and by another one.
    pub rest_local: Hist,
    pub rest_remote: Hist,
}

fn cpu_of(pids: &[u32]) -> Option<u64> {
    pids.iter().map(|&p| proc::cpu_ticks(p)).sum()
}

pub async fn run(a: NodesArgs) {
    if !a.bin.exists() {
        fail(&format!(
            "{} not found (cargo build --release -p dispatchd first)",
            a.bin.display()
        ));
    }
    if a.nodes == 0 || a.riders == 0 || a.merchants == 0 || a.orders_per_customer == 0 {
        fail("--nodes, --riders, --merchants and --orders-per-customer must be positive");
    }
    if a.warmup_s >= a.seconds || a.fix_every_s <= 0.0 {
        fail("need --warmup-s < --seconds and --fix-every-s > 0");
    }
    proc::raise_nofile();
    let dir = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("dispatch-nodes-{}", rand::random::<u32>()))
    });
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap_or_else(|e| fail(&format!("http client: {e}")));
    let t_start = Instant::now();
    let cl = Cluster::start(&a.bin, a.nodes, &dir, &http).await;
    let urls: Vec<String> = cl.nodes.iter().map(|n| n.url.clone()).collect();
    println!(
        "# nodes: {} node(s) of {} on one Redis (:{}, nothing on disk), {} riders, {} orders/s, {} merchants \
         in {:.0} km x {:.0} km, {} s ({} s warm-up); files in {}",
        a.nodes,
        a.bin.display(),
        cl.redis.port,
        a.riders,
        a.orders_per_s,
        a.merchants,
        2.0 * a.half_km,
        2.0 * a.half_km,
        a.seconds,
        a.warmup_s,
        dir.display()
    );

    let shared = Arc::new(Shared::default());
    let city = CityBox::new(a.center_lat, a.center_lon, a.half_km * 1000.0);
    let merchants = setup::merchants(
        &shared,
        &http,
        &urls,
        &cl.dispatcher,
        a.merchants,
        &city,
        a.seed,
    )
    .await;
    if merchants.len() < a.merchants {
        print_kinds(&shared);
        fail("not every merchant could be created");
    }
    let merchant_zone: Vec<String> = merchants
        .iter()
        .map(|m| {
            let (lat, lon) = city.to_latlon(m.at.0, m.at.1);
            zones::zone_of(lat, lon)
        })
        .collect();
    let mut distinct = merchant_zone.clone();
    distinct.sort();
    distinct.dedup();
    let Some(held) = zones::settled(
        &cl.redis.url(),
        &distinct,
        a.nodes,
        Duration::from_secs(3),
        Duration::from_secs(30),
    )
    .await
    else {
        fail("the merchants' zones did not all get a steady holder within 30 s");
    };
    let merchant_node: Vec<usize> = merchant_zone.iter().map(|z| held[z]).collect();
    let per_node: Vec<String> = (0..a.nodes)
        .map(|i| {
            let zones = held.values().filter(|&&h| h == i).count();
            let ms = merchant_node.iter().filter(|&&h| h == i).count();
            format!("{} holds {zones} zone(s), {ms} merchant(s)", node_id(i))
        })
        .collect();
    println!(
        "# {} merchants in {} zones: {}",
        merchants.len(),
        distinct.len(),
        per_node.join("; ")
    );

    let total_orders = (a.orders_per_s * a.seconds as f64).ceil() as usize;
    let n_customers = total_orders.div_ceil(a.orders_per_customer).max(1);
    let customers = setup::customers(&shared, &http, &urls, n_customers).await;
    let tokens = setup::riders(&shared, &http, &urls, &cl.dispatcher, a.riders).await;
    println!(
        "# set-up: {} of {n_customers} customers, {} of {} riders created in {:.1} s since the first start",
        customers.len(),
        tokens.len(),
        a.riders,
        t_start.elapsed().as_secs_f64()
    );
    if customers.is_empty() || tokens.is_empty() {
        print_kinds(&shared);
        fail("no customer or no rider could be created");
    }

    // Every rider's socket on a node drawn at random (seeded: the same draw run after run).
    let (phase_tx, phase_rx) = watch::channel(Phase::Connecting);
    let handshakes = Arc::new(Semaphore::new(64));
    let setups: Vec<Arc<RiderSetup>> = cl
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let server: SocketAddr = n
                .url
                .trim_start_matches("http://")
                .parse()
                .unwrap_or_else(|e| fail(&format!("node address {}: {e}", n.url)));
            Arc::new(RiderSetup {
                shared: shared.clone(),
                server,
                ws_base: format!("ws://{server}"),
                city,
                period: Duration::from_secs_f64(a.fix_every_s),
                accept_prob: 1.0,
                delivery_s: a.delivery_s,
                phase: phase_rx.clone(),
                handshakes: handshakes.clone(),
                node: Some(i),
            })
        })
        .collect();
    let mut rng = SmallRng::seed_from_u64(a.seed ^ 0x5eed);
    let mut sockets_on = vec![0usize; a.nodes];
    let riders: Vec<_> = tokens
        .into_iter()
        .map(|t| {
            let k = rng.gen_range(0..a.nodes);
            sockets_on[k] += 1;
            tokio::spawn(rider::run(
                setups[k].clone(),
                t,
                IpAddr::V4(Ipv4Addr::LOCALHOST),
            ))
        })
        .collect();
    let c = &shared.counters;
    let t_conn = Instant::now();
    while (c.sockets_open.load(Ordering::Relaxed).max(0) as u64 + get(&c.connect_failed))
        < riders.len() as u64
        && t_conn.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "# {} rider sockets online ({} failed); sockets per node: {}",
        c.sockets_open.load(Ordering::Relaxed),
        get(&c.connect_failed),
        sockets_on
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{} {k}", node_id(i)))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // The run.
    let run = Arc::new(Run {
        shared: shared.clone(),
        http: http.clone(),
        urls,
        merchants,
        merchant_node,
        customers,
        city,
        orders: Mutex::new(HashMap::new()),
        rest_local: Hist::default(),
        rest_remote: Hist::default(),
    });
    let pids = cl.pids();
    let me = [std::process::id()];
    let start = Instant::now();
    let _ = phase_tx.send(Phase::Running);
    let gen = tokio::spawn(orders::generate(
        run.clone(),
        a.orders_per_s,
        a.max_inflight,
        phase_rx.clone(),
    ));
    tokio::time::sleep_until((start + Duration::from_secs(a.warmup_s)).into()).await;
    let warm_at = Instant::now();
    let base = c.snapshot();
    let (cpu0, my_cpu0) = (cpu_of(&pids), cpu_of(&me));
    for h in [
        &shared.accept_rtt,
        &run.rest_local,
        &run.rest_remote,
        &shared.offer_latency,
    ] {
        h.take_interval();
    }
    tokio::time::sleep_until((start + Duration::from_secs(a.seconds)).into()).await;
    let end_at = Instant::now();
    let d = c.snapshot().since(&base);
    let (cpu1, my_cpu1) = (cpu_of(&pids), cpu_of(&me));
    let local = run.rest_local.take_interval();
    let remote = run.rest_remote.take_interval();
    let accept = shared.accept_rtt.take_interval();
    let _ = phase_tx.send(Phase::Stopping);
    let _ = gen.await;
    let window_s = end_at.duration_since(warm_at).as_secs_f64();
    let still_waiting = crate::city::orders::prune_pending(&shared, Duration::from_secs(10));
    let held_after = zones::holders(&cl.redis.url(), &distinct, a.nodes);
    let moved = distinct
        .iter()
        .filter(|z| held_after.get(*z).copied().flatten() != held.get(*z).copied())
        .count();

    let log = shared
        .offer_log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let all: Vec<Duration> = {
        let mut v: Vec<Duration> = log
            .iter()
            .filter(|o| o.at >= warm_at && o.at <= end_at)
            .map(|o| o.latency)
            .collect();
        v.sort();
        v
    };
    let split = {
        let om = run.orders.lock().unwrap_or_else(|e| e.into_inner());
        let in_window: Vec<_> = log.into_iter().filter(|o| o.at <= end_at).collect();
        OfferSplit::of(&in_window, warm_at, &om, &run.merchant_node)
    };
    let mut rest_all = local.clone();
    let _ = rest_all.add(&remote);
    let ms2 = |h: &hdrhistogram::Histogram<u64>| {
        let f = |q| q_ms(h, q).map_or("-".into(), |v| format!("{v:.1}"));
        format!("{} / {} ms (n = {})", f(0.5), f(0.99), h.len())
    };
    let crossed = split
        .crossed_share()
        .map_or("-".into(), |s| format!("{:.0} %", s * 100.0));
    let cores = proc::cores(cpu0, cpu1, window_s);
    let my_cores = proc::cores(my_cpu0, my_cpu1, window_s);
    let rows: Vec<(String, String)> = vec![
        ("nodes".into(), a.nodes.to_string()),
        (
            "measured".into(),
            format!("{window_s:.1} s (after {} s of warm-up)", a.warmup_s),
        ),
        (
            "orders created / delivered".into(),
            format!(
                "{:.2}/s / {:.2}/s ({} and {} delivered messages sent; target {}/s)",
                d.orders_created as f64 / window_s,
                d.delivered_sent as f64 / window_s,
                d.orders_created,
                d.delivered_sent,
                a.orders_per_s
            ),
        ),
        ("offer latency p50 / p95 / p99, all".into(), p50_95_99(&all)),
        ("… rider on the order's node".into(), p50_95_99(&split.same)),
        ("… rider on another node".into(), p50_95_99(&split.crossed)),
        ("offers that crossed nodes".into(), crossed),
        (
            "offer latency by mesh hops (accept, offer): 0".into(),
            p50_95_99(&split.by_hops[0]),
        ),
        ("… 1 hop".into(), p50_95_99(&split.by_hops[1])),
        ("… 2 hops".into(), p50_95_99(&split.by_hops[2])),
        ("REST p50 / p99, all order requests".into(), ms2(&rest_all)),
        ("… to the order's node".into(), ms2(&local)),
        ("… to another node".into(), ms2(&remote)),
        ("merchant accept round trip p50 / p99".into(), ms2(&accept)),
        (
            "CPU, every node and Redis / this tool".into(),
            format!("{cores:.2} / {my_cores:.2} cores"),
        ),
        (
            "no offer within 10 s / waiting at the end".into(),
            format!("{} / {still_waiting}", get(&c.no_offer)),
        ),
        (
            "zones that changed holder during the run".into(),
            moved.to_string(),
        ),
        ("errors in the measured part".into(), d.errors.to_string()),
    ];
    println!("\n{}", crate::city::report::markdown(&rows));
    for (kind, count) in c.kinds() {
        println!("# error: {kind}: {count}");
    }
    // The riders close their sockets on `Stopping`; then the nodes go.
    let mut riders = riders;
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        futures_util::future::join_all(riders.iter_mut()),
    )
    .await;
    for r in &riders {
        r.abort();
    }
    cl.stop();
}

fn print_kinds(shared: &Shared) {
    for (kind, count) in shared.counters.kinds() {
        eprintln!("nodes: {kind}: {count}");
    }
}
