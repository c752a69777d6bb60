//! `city`: a city's worth of riders, merchants and customers against one running server.
//!
//! Set-up over REST (merchants with one item each, customers, riders), then every rider
//! socket connects (spread over `--source-ips`), goes online and sends one fix; the
//! server's RSS before and after gives the cost of a rider socket. Then, for `--seconds`:
//! fixes at `--fixes-per-s` in total (rider.rs), orders at `--orders-per-s` (orders.rs),
//! probes every 200 ms (probes.rs), a line every `--interval-s` (report.rs).

pub mod movement;
pub(crate) mod orders;
mod probes;
pub(crate) mod report;
pub(crate) mod rest;
pub(crate) mod rider;

use crate::proc;
use crate::stats::{get, max_ms, q_ms, Counters, Hist};
use indicatif::{ProgressBar, ProgressStyle};
use movement::CityBox;
use rider::{Phase, RiderSetup};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

#[derive(clap::Args, Debug)]
pub struct CityArgs {
    /// Rider sockets (the riders are created over REST first).
    #[arg(long, default_value_t = 1000)]
    pub riders: usize,
    /// Location fixes per second, all sockets together, spread evenly over them. Above one
    /// fix per second per socket the server's rate limit needs raising
    /// (DISPATCH_RATE_LIMIT__RIDER_FIXES_PER_10S, ..._RIDER_FIX_BURST).
    #[arg(long, default_value_t = 100.0)]
    pub fixes_per_s: f64,
    /// Orders created, paid and accepted by their merchant per second.
    #[arg(long, default_value_t = 1.0)]
    pub orders_per_s: f64,
    /// Merchants (one item each), spread over the city box.
    #[arg(long, default_value_t = 50)]
    pub merchants: usize,
    /// Each merchant's `prep_time_s`: under `batch` an order is planned by its food-ready
    /// time, so its offer comes about this long after the merchant accepts, less travel.
    #[arg(long, default_value_t = 300)]
    pub prep_s: u32,
    /// Customers placing the orders (registration is slow and rate limited per IP).
    #[arg(long, default_value_t = 20)]
    pub customers: usize,
    /// Chance a rider accepts an offer (else it declines).
    #[arg(long, default_value_t = 1.0)]
    pub accept_prob: f64,
    /// Seconds from assignment to `delivered` (`picked_up` at about a third of it).
    #[arg(long, default_value_t = 20.0)]
    pub delivery_s: f64,
    /// Length of the measured run, after every socket is connected.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Seconds between report lines.
    #[arg(long, default_value_t = 5)]
    pub interval_s: u64,
    /// Local source addresses for the rider sockets, round robin (loopback only, e.g.
    /// 127.0.0.1,127.0.0.2): each gives its own ~28k ephemeral ports towards the server.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
    pub source_ips: Vec<IpAddr>,
    /// Orders at most on their way through REST at once; orders due beyond it are dropped
    /// (counted).
    #[arg(long, default_value_t = 256)]
    pub max_inflight: usize,
    /// WebSocket handshakes in flight at once while connecting.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Give up waiting for the sockets to connect after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub connect_timeout_s: u64,
    /// An order with no offer this many seconds after its merchant accepted counts as
    /// `no_offer`.
    #[arg(long, default_value_t = 60)]
    pub offer_window_s: u64,
    /// Writes the interval rows and a summary row here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    #[arg(long, default_value_t = 31.23)]
    pub center_lat: f64,
    #[arg(long, default_value_t = 121.47)]
    pub center_lon: f64,
    /// Half the side of the square city, km.
    #[arg(long, default_value_t = 15.0)]
    pub half_km: f64,
    /// Base URL for the /healthz, /readyz and /metrics probes, e.g. the server's ops
    /// listener (`server.ops_bind`); by default `--url`.
    #[arg(long)]
    pub probe_url: Option<String>,
}

/// What the tasks of a run share.
#[derive(Default)]
pub struct Shared {
    pub counters: Counters,
    /// Merchant accept request sent → first offer frame naming the order.
    pub offer_latency: Hist,
    /// Round trip of the merchant's accept request.
    pub accept_rtt: Hist,
    /// By route, as `probes::ROUTES`.
    pub probes: [Hist; 3],
    /// Orders accepted by their merchant and not offered yet: when the accept was sent.
    pub pending: Mutex<HashMap<String, Instant>>,
    /// Timed first offers at sockets of riders that know their node (`nodes` runs only).
    pub offer_log: Mutex<Vec<rider::TimedOffer>>,
}

fn fail(msg: &str) -> ! {
    eprintln!("city: {msg}");
    std::process::exit(2);
}

async fn server_addr(url: &str) -> SocketAddr {
    let authority = url
        .split("//")
        .nth(1)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or("");
    let authority = if authority
        .rsplit(':')
        .next()
        .is_some_and(|p| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let found = tokio::net::lookup_host(&authority)
        .await
        .map(|mut addrs| addrs.next());
    match found {
        Ok(Some(addr)) => addr,
        Ok(None) => fail(&format!("{authority} resolves to nothing")),
        Err(e) => fail(&format!("cannot resolve {authority}: {e}")),
    }
}

fn kib_to_mib(k: u64) -> f64 {
    k as f64 / 1024.0
}

pub async fn run(url: &str, token: &str, pid: u32, a: CityArgs) {
    let (nofile_before, nofile) = proc::raise_nofile();
    if a.riders == 0 || a.fixes_per_s <= 0.0 || a.interval_s == 0 || a.seconds == 0 {
        fail("--riders, --fixes-per-s, --interval-s and --seconds must be positive");
    }
    if !(0.0..=1.0).contains(&a.accept_prob) {
        fail("--accept-prob is a probability (0..=1)");
    }
    let server = server_addr(url).await;
    if a.source_ips.is_empty() {
        fail("--source-ips is empty");
    }
    for ip in &a.source_ips {
        if !ip.is_loopback() {
            fail(&format!("source address {ip} is not a loopback address"));
        }
        if ip.is_ipv4() != server.is_ipv4() {
            fail(&format!(
                "source address {ip} is not of the server's family ({server})"
            ));
        }
    }
    let per_socket = a.fixes_per_s / a.riders as f64;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let comm = comm.trim();
    if comm.is_empty() {
        fail(&format!(
            "no process {pid} (--pid is the server's process id)"
        ));
    }
    if comm != "dispatchd" {
        println!(
            "# note: process {pid} is {comm:?}, not dispatchd: RSS and CPU are that process's"
        );
    }
    println!(
        "# city: {} riders over {} source address(es), {:.0} fixes/s ({per_socket:.2}/s per socket), \
         {} orders/s, {} merchants, {} customers, {} s; server {server} (pid {pid}); RLIMIT_NOFILE {nofile_before} -> {nofile}",
        a.riders,
        a.source_ips.len(),
        a.fixes_per_s,
        a.orders_per_s,
        a.merchants,
        a.customers,
        a.seconds
    );
    println!(
        "# offer latency = merchant accept request sent -> first offer frame naming the order at a \
         rider socket; meaningful under dispatch.policy = \"nearest\" (batch holds offers on purpose)"
    );
    if per_socket > 1.0 {
        let need = (per_socket * 10.0 * 1.2).ceil() as u64;
        println!(
            "# note: {per_socket:.2} fixes/s per socket is above the server's default limit (rate_limit.rider_fixes_per_10s = 10); \
             start it with DISPATCH_RATE_LIMIT__RIDER_FIXES_PER_10S={need} DISPATCH_RATE_LIMIT__RIDER_FIX_BURST={need} \
             or the excess is answered `rate_limited` (counted as errors)"
        );
    }
    if 1.0 / per_socket > 25.0 {
        println!(
            "# note: a socket sends a fix only every {:.0} s; riders go stale after timers.rider_silent_s (30 s) \
             without one and get no offers",
            1.0 / per_socket
        );
    }
    // Each rider is busy about --delivery-s per order it takes.
    let capacity = a.riders as f64 / a.delivery_s.max(0.001);
    if a.orders_per_s > 0.8 * capacity {
        println!(
            "# note: {} riders busy ~{} s per order deliver at most ~{capacity:.1} orders/s; at {} orders/s riders run short \
             and the offer latency then includes waiting for a free rider (lower --delivery-s or add riders)",
            a.riders, a.delivery_s, a.orders_per_s
        );
    }
    if a.source_ips.len() * 28_000 < a.riders {
        println!(
            "# note: {} sockets over {} source address(es) may run out of local ports (~28k each by default)",
            a.riders,
            a.source_ips.len()
        );
    }

    let shared = Arc::new(Shared::default());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(a.max_inflight.max(8))
        .build()
        .unwrap_or_else(|e| fail(&format!("http client: {e}")));
    let city = CityBox::new(a.center_lat, a.center_lon, a.half_km * 1000.0);

    // Set-up over REST.
    let t_setup = Instant::now();
    // Customers first: registration hashes passwords (Argon2, ~19 MiB each) on the server's
    // blocking threads, whose memory only goes back when they have idled ~10 s; the
    // RSS-before-sockets sample waits for that.
    let customers = rest::create_customers(&shared, &http, url, a.customers).await;
    let hashed_at = Instant::now();
    let merchants =
        rest::create_merchants(&shared, &http, url, token, a.merchants, a.prep_s, &city).await;
    let tokens = rest::create_riders(&shared, &http, url, token, a.riders).await;
    println!(
        "# set-up: {} of {} riders, {} of {} merchants, {} of {} customers created in {:.1} s",
        tokens.len(),
        a.riders,
        merchants.len(),
        a.merchants,
        customers.len(),
        a.customers,
        t_setup.elapsed().as_secs_f64()
    );
    if tokens.is_empty() {
        print_kinds(&shared.counters);
        fail("no rider could be created");
    }
    if a.orders_per_s > 0.0 && (merchants.is_empty() || customers.is_empty()) {
        println!("# note: no merchant or no customer: no orders will be placed");
    }

    // Connect every socket.
    let settle = (hashed_at + Duration::from_secs(12)).max(Instant::now() + Duration::from_secs(1));
    if a.customers > 0 && settle > Instant::now() + Duration::from_secs(1) {
        println!(
            "# waiting for the server's password-hashing threads to idle before sampling its RSS"
        );
    }
    tokio::time::sleep_until(settle.into()).await;
    let rss_before = proc::rss_kib(pid);
    let n = tokens.len();
    let (phase_tx, phase_rx) = watch::channel(Phase::Connecting);
    let setup = Arc::new(RiderSetup {
        shared: shared.clone(),
        server,
        ws_base: format!("ws://{server}"),
        city,
        period: Duration::from_secs_f64((n as f64 / a.fixes_per_s).max(0.001)),
        accept_prob: a.accept_prob,
        delivery_s: a.delivery_s,
        phase: phase_rx.clone(),
        handshakes: Arc::new(Semaphore::new(a.connect_concurrency.max(1))),
        node: None,
    });
    let t_conn = Instant::now();
    let handles: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let ip = a.source_ips[i % a.source_ips.len()];
            tokio::spawn(rider::run(setup.clone(), t, ip))
        })
        .collect();
    let c = &shared.counters;
    loop {
        let open = c.sockets_open.load(Ordering::Relaxed).max(0) as usize;
        let failed = get(&c.connect_failed) as usize;
        if open + failed >= n || t_conn.elapsed() > Duration::from_secs(a.connect_timeout_s) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_s = t_conn.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let connected = c.sockets_open.load(Ordering::Relaxed).max(0) as u64;
    let rss_after = proc::rss_kib(pid);
    let rss_per_rider_kib = if connected > 0 {
        rss_after.saturating_sub(rss_before) as f64 / connected as f64
    } else {
        f64::NAN
    };
    println!(
        "# {connected} of {n} rider sockets online in {connect_s:.1} s ({} failed); server RSS {:.1} -> {:.1} MiB: {rss_per_rider_kib:.1} KiB per rider socket",
        get(&c.connect_failed),
        kib_to_mib(rss_before),
        kib_to_mib(rss_after)
    );

    // The measured run.
    let base = c.snapshot();
    let cpu0 = proc::cpu_ticks(pid);
    let start = Instant::now();
    let _ = phase_tx.send(Phase::Running);
    let order_setup = Arc::new(orders::OrderSetup {
        shared: shared.clone(),
        http: http.clone(),
        url: url.to_string(),
        merchants,
        customers,
        city,
    });
    let mut tasks = vec![tokio::spawn(orders::generate(
        order_setup,
        a.orders_per_s,
        a.max_inflight,
        phase_rx.clone(),
    ))];
    let (probe_shared, probe_phase) = (shared.clone(), phase_rx.clone());
    let probe_url = a.probe_url.clone().unwrap_or_else(|| url.to_string());
    tasks.push(tokio::task::spawn_blocking(move || {
        probes::run_all(probe_shared, probe_url, probe_phase)
    }));

    let pb = ProgressBar::new(a.seconds);
    pb.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} s {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let window = Duration::from_secs(a.offer_window_s);
    let base_row = report::Row {
        riders: n,
        fixes_per_s_target: a.fixes_per_s,
        orders_per_s_target: a.orders_per_s,
        rss_per_rider_kib,
        ..Default::default()
    };
    let mut rows = Vec::new();
    let (mut prev, mut prev_cpu, mut prev_t) = (base, cpu0, start);
    let mut max_cores: f64 = 0.0;
    for sec in 1..=a.seconds {
        tokio::time::sleep_until((start + Duration::from_secs(sec)).into()).await;
        pb.set_position(sec);
        if sec % a.interval_s != 0 && sec != a.seconds {
            continue;
        }
        orders::prune_pending(&shared, window);
        let now = Instant::now();
        let dt = now.duration_since(prev_t).as_secs_f64();
        let snap = c.snapshot();
        let d = snap.since(&prev);
        let cpu = proc::cpu_ticks(pid);
        let cores = proc::cores(prev_cpu, cpu, dt);
        if cores.is_finite() {
            max_cores = max_cores.max(cores);
        }
        let offer = shared.offer_latency.take_interval();
        let accept = shared.accept_rtt.take_interval();
        let probe: Vec<_> = shared.probes.iter().map(Hist::take_interval).collect();
        let row = report::measured_row(
            &base_row,
            report::Measured {
                kind: "interval",
                elapsed_s: now.duration_since(start).as_secs_f64(),
                over_s: dt,
                sockets_open: c.sockets_open.load(Ordering::Relaxed),
                counts: &d,
                offer: &offer,
                accept: &accept,
                probes: &probe,
                rss_kib: proc::rss_kib(pid),
                cores,
            },
        );
        pb.suspend(|| println!("{}", report::line(&row)));
        pb.set_message(format!(
            "{:.0} fixes/s, {} offers, {} errors",
            row.fixes_per_s,
            snap.offers - base.offers,
            snap.errors - base.errors
        ));
        rows.push(row);
        (prev, prev_cpu, prev_t) = (snap, cpu, now);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let end = c.snapshot();
    let cpu_end = proc::cpu_ticks(pid);
    let rss_end = proc::rss_kib(pid);
    let open_end = c.sockets_open.load(Ordering::Relaxed);
    let _ = phase_tx.send(Phase::Stopping);
    pb.finish_and_clear();
    let waiting = orders::prune_pending(&shared, window);

    // Summary.
    let t = end.since(&base);
    let offer = shared.offer_latency.total();
    let accept = shared.accept_rtt.total();
    let probe: Vec<_> = shared.probes.iter().map(Hist::total).collect();
    let avg_cores = proc::cores(cpu0, cpu_end, elapsed);
    let summary = report::measured_row(
        &base_row,
        report::Measured {
            kind: "summary",
            elapsed_s: elapsed,
            over_s: elapsed,
            sockets_open: open_end,
            counts: &t,
            offer: &offer,
            accept: &accept,
            probes: &probe,
            rss_kib: rss_end,
            cores: avg_cores,
        },
    );
    let mut md: Vec<(String, String)> = vec![
        (
            "rider sockets".into(),
            format!(
                "{connected} connected of {n} created ({} requested), {} connect failures, {} source address(es), connected in {connect_s:.1} s",
                a.riders,
                get(&c.connect_failed),
                a.source_ips.len()
            ),
        ),
        ("measured run".into(), format!("{elapsed:.1} s")),
        (
            "fixes sent".into(),
            format!(
                "{} ({:.0}/s; target {:.0}/s, {per_socket:.2}/s per socket)",
                t.fixes_sent, summary.fixes_per_s, a.fixes_per_s
            ),
        ),
        (
            "orders".into(),
            format!(
                "{} created ({:.2}/s; target {:.2}/s), {} paid, {} accepted by their merchant, {} dropped at --max-inflight",
                t.orders_created,
                summary.orders_per_s,
                a.orders_per_s,
                t.orders_paid,
                t.orders_accepted,
                t.orders_dropped
            ),
        ),
        (
            "offer frames".into(),
            format!(
                "{} received; {} accepts and {} declines sent; {} offer_closed",
                t.offers,
                get(&c.accepts_sent),
                get(&c.declines_sent),
                get(&c.offers_closed)
            ),
        ),
        (
            "merchant accept sent → first offer frame".into(),
            format!(
                "{} over {} orders (p90 {})",
                report::ms3(summary.offer_p50_ms, summary.offer_p99_ms, summary.offer_max_ms),
                t.offers_timed,
                report::short(q_ms(&offer, 0.9)) + " ms"
            ),
        ),
        (
            format!("orders without an offer within {} s", a.offer_window_s),
            format!("{} (and {waiting} accepted orders still waiting at the end)", t.no_offer),
        ),
        (
            "merchant accept request round trip".into(),
            report::ms3(q_ms(&accept, 0.5), q_ms(&accept, 0.99), max_ms(&accept)),
        ),
        (
            "deliveries".into(),
            format!(
                "{} assigned frames, {} picked_up and {} delivered sent, {} orders taken back (unassigned / cancelled)",
                get(&c.assigned),
                get(&c.picked_up_sent),
                t.delivered_sent,
                get(&c.unassigned)
            ),
        ),
    ];
    for (i, route) in probes::ROUTES.iter().enumerate() {
        md.push((
            format!("probe GET {route}"),
            format!(
                "{} over {} probes",
                report::ms3(
                    q_ms(&probe[i], 0.5),
                    q_ms(&probe[i], 0.99),
                    max_ms(&probe[i])
                ),
                probe[i].len()
            ),
        ));
    }
    md.extend([
        (
            "server RSS".into(),
            format!(
                "{:.1} MiB before the sockets, {:.1} MiB with them, {:.1} MiB at the end",
                kib_to_mib(rss_before),
                kib_to_mib(rss_after),
                kib_to_mib(rss_end)
            ),
        ),
        (
            "RSS per rider socket".into(),
            format!("{rss_per_rider_kib:.1} KiB (RSS with the sockets − before, ÷ {connected} connected)"),
        ),
        (
            "server CPU".into(),
            format!("{avg_cores:.2} cores on average, {max_cores:.2} in the busiest interval"),
        ),
        ("errors".into(), t.errors.to_string()),
    ]);
    // With the Redis store: how far Redis trailed the engine's fixes.
    let metrics_url = format!("{}/metrics", a.probe_url.as_deref().unwrap_or(url));
    if let Ok(r) = http.get(metrics_url).send().await {
        md.extend(crate::prom::store_rows(&r.text().await.unwrap_or_default()));
    }
    for (kind, count) in c.kinds() {
        md.push((format!("error: {kind}"), count.to_string()));
    }
    println!("\n{}", report::markdown(&md));

    if let Some(path) = &a.csv {
        let mut text = report::csv_header() + "\n";
        for r in rows.iter().chain(std::iter::once(&summary)) {
            text += &report::csv_row(r);
            text.push('\n');
        }
        match std::fs::write(path, text) {
            Ok(()) => println!("# wrote {}", path.display()),
            Err(e) => eprintln!("city: cannot write {}: {e}", path.display()),
        }
    }

    // Let the sockets close; whatever is left is dropped with the runtime.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        for h in handles {
            let _ = h.await;
        }
        for t in tasks {
            let _ = t.await;
        }
    })
    .await;
}

fn print_kinds(c: &Counters) {
    for (kind, count) in c.kinds() {
        eprintln!("city: {kind}: {count}");
    }
}
