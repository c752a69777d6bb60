//! One batch planning round at city scale: 5,000 waiting orders and 20,000 available
//! riders uniform within ±15 km of 31.23, 121.47, the orders at 50, 500 or 5,000 merchants
//! (each order at a merchant drawn uniformly: the fewer merchants, the denser each
//! cluster). A round is run as `PlannerActor::round` and `solve` run it, without actors:
//! the book's searches (one per order, radius widened to `max_radius_m`, `candidates_k`
//! each) through `batch_nearest` (the matcher's handler for `FindCandidatesBatch`), the
//! answers lined up by order id, `PlanBook::input`, then `plan::solve`, all with
//! `DispatchConfig::default()` as the planner actor builds its plan config from it. Offer
//! messages are not built.
//!
//! Orders were accepted in the last 10 minutes with 8–20 minutes of preparation, so food
//! is ready from 2 minutes ago to 20 minutes ahead; drop-offs 0.5–5 km from the merchant.
//! No order has decliners. Rounds repeat on the same book (a round only reads the book
//! and records due times), so every round does the same work; one warm-up round is not
//! counted.
//!
//! Run: `cargo bench --bench planner_round`.

mod common;

use criterion::black_box;
use dispatch_actors::actors::matcher::{batch_nearest, CandidateQuery};
use dispatch_actors::config::DispatchConfig;
use dispatch_actors::domain::{GeoPoint, MerchantId, OrderId};
use dispatch_actors::matcher::{Nearby, RiderIndex};
use dispatch_actors::plan::book::{Found, PlanBook, PlanEntry};
use dispatch_actors::plan::{self, Plan, PlanConfig, TravelModel, WaitReason};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Engine time of the round (any time later than every order's placement).
const NOW_MS: u64 = 12 * 3_600_000;
const MINUTE_MS: u64 = 60_000;
/// Target for one round, p99.
const TARGET_P99_MS: f64 = 50.0;

struct Sizes {
    orders: usize,
    riders: usize,
    merchants: &'static [usize],
    rounds: usize,
}

/// What one round spent where, and what it decided.
struct Round {
    search: Duration,
    input: Duration,
    solve: Duration,
    riders_seen: usize,
    plan: Plan,
}

impl Round {
    fn total(&self) -> Duration {
        self.search + self.input + self.solve
    }
}

fn main() {
    let sizes = if common::full_run() {
        Sizes {
            orders: 5_000,
            riders: 20_000,
            merchants: &[50, 500, 5_000],
            rounds: 30,
        }
    } else {
        Sizes {
            orders: 200,
            riders: 1_000,
            merchants: &[5, 50, 200],
            rounds: 3,
        }
    };
    let riders = common::riders(sizes.riders, 42, 1.0);
    let index = RiderIndex::bulk(riders);
    let cfg = DispatchConfig::default();
    println!(
        "planning round ({} waiting orders, {} available riders, city ±{} km; {} rounds after one warm-up; candidates_k {}, radius {} km, bundles of up to {})",
        sizes.orders,
        sizes.riders,
        common::HALF_WIDTH_M / 1000.0,
        sizes.rounds,
        cfg.candidates_k,
        cfg.max_radius_m / 1000.0,
        cfg.max_bundle
    );
    for &merchants in sizes.merchants {
        let mut book = book(sizes.orders, merchants);
        round(&mut book, &index, &cfg); // warm-up
        let rounds: Vec<Round> = (0..sizes.rounds)
            .map(|_| round(&mut book, &index, &cfg))
            .collect();
        report(merchants, &rounds);
    }
}

/// The waiting orders: each at a merchant drawn uniformly from `merchants` spread over
/// the city.
fn book(orders: usize, merchants: usize) -> PlanBook {
    let places = common::points(merchants, 99);
    let mut rng = StdRng::seed_from_u64(merchants as u64);
    let mut book = PlanBook::default();
    for i in 0..orders {
        let m = rng.gen_range(0..merchants);
        let pickup = places[m];
        let placed_ms = NOW_MS - rng.gen_range(0..10 * MINUTE_MS);
        let ready_at_ms = placed_ms + rng.gen_range(8 * MINUTE_MS..20 * MINUTE_MS);
        book.add(PlanEntry {
            order_id: OrderId::parse(&format!("o_{i}")).unwrap(),
            merchant_id: MerchantId::parse(&format!("m_{m}")).unwrap(),
            pickup,
            dropoff: drop_near(&mut rng, pickup),
            placed_ms,
            ready_at_ms,
            radius_m: DispatchConfig::default().initial_radius_m,
            exclude: HashSet::new(),
            expired: HashSet::new(),
        });
    }
    book
}

fn drop_near(rng: &mut StdRng, pickup: GeoPoint) -> GeoPoint {
    pickup.destination(rng.gen_range(0.0..360.0), rng.gen_range(500.0..5_000.0))
}

/// One round, step for step as the planner actor runs it (`PlannerActor::round`, then
/// `PlannerActor::solve` up to the offers).
fn round(book: &mut PlanBook, index: &RiderIndex, cfg: &DispatchConfig) -> Round {
    let plan_cfg = PlanConfig {
        round_ms: (cfg.round_s * 1000.0) as u64,
        max_orders_per_bundle: cfg.max_bundle.max(1),
        ..PlanConfig::default()
    };
    let travel = TravelModel::with_speed(cfg.speed_mps);

    let t = Instant::now();
    let searches = book.searches();
    let ids: Vec<OrderId> = searches.iter().map(|e| e.order_id.clone()).collect();
    let queries: Vec<CandidateQuery> = searches
        .into_iter()
        .map(|e| CandidateQuery {
            at: e.pickup,
            k: cfg.candidates_k.max(1),
            radius_m: e.radius_m.max(cfg.max_radius_m),
            exclude: e.exclude.clone(),
        })
        .collect();
    let found = batch_nearest(index, &queries);
    let search = t.elapsed();

    let t = Instant::now();
    let mut by_id: HashMap<OrderId, Vec<Found>> = ids
        .into_iter()
        .zip(found)
        .map(|(id, near)| (id, near.into_iter().map(found_of).collect()))
        .collect();
    let aligned: Vec<Vec<Found>> = book
        .searches()
        .iter()
        .map(|e| by_id.remove(&e.order_id).unwrap_or_default())
        .collect();
    let input = book.input(NOW_MS, &aligned, cfg.speed_mps);
    let input_time = t.elapsed();

    let t = Instant::now();
    let plan = plan::solve(black_box(&input), &travel, &plan_cfg);
    let solve = t.elapsed();
    Round {
        search,
        input: input_time,
        solve,
        riders_seen: input.riders.len(),
        plan,
    }
}

fn found_of(n: Nearby) -> Found {
    Found {
        rider_id: n.rider_id,
        location: n.location,
        distance_m: n.distance_m,
        busy_until: n.busy_until,
        shift_end_ms: n.shift_end_ms,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(merchants: usize, rounds: &[Round]) {
    let ns = |f: &dyn Fn(&Round) -> Duration| {
        common::spread(rounds.iter().map(|r| f(r).as_nanos() as u64).collect())
    };
    let total = ns(&|r| r.total());
    let search = ns(&|r| r.search);
    let input = ns(&|r| r.input);
    let solve = ns(&|r| r.solve);
    let last = rounds.last().expect("at least one round");
    let planned: usize = last.plan.routes.iter().map(|r| r.orders.len()).sum();
    let bundled = last
        .plan
        .routes
        .iter()
        .filter(|r| r.orders.len() > 1)
        .count();
    let waiting_by = |why: WaitReason| {
        last.plan
            .waiting
            .iter()
            .filter(|w| w.reason == why)
            .map(|w| w.orders.len())
            .sum::<usize>()
    };
    let p99_ms = total.p99 as f64 / 1e6;
    println!("  {merchants} merchants:");
    println!(
        "    round  {}  ({})",
        total.show_ns(),
        if p99_ms <= TARGET_P99_MS {
            format!("p99 within the {TARGET_P99_MS} ms target")
        } else {
            format!("p99 MISSES the {TARGET_P99_MS} ms target")
        }
    );
    println!(
        "    parts, p50: search {:.2} ms, input {:.2} ms, solve {:.2} ms",
        search.p50 as f64 / 1e6,
        input.p50 as f64 / 1e6,
        solve.p50 as f64 / 1e6
    );
    println!(
        "    parts, p99: search {:.2} ms, input {:.2} ms, solve {:.2} ms; last round {:.2} ms",
        search.p99 as f64 / 1e6,
        input.p99 as f64 / 1e6,
        solve.p99 as f64 / 1e6,
        ms(last.total())
    );
    println!(
        "    decided: {} riders seen, {} routes ({} bundles) for {planned} orders; waiting: {} not ready soon, {} deferred, {} riders taken, {} no candidate",
        last.riders_seen,
        last.plan.routes.len(),
        bundled,
        waiting_by(WaitReason::NotReadySoon),
        waiting_by(WaitReason::Deferred),
        waiting_by(WaitReason::RidersTaken),
        waiting_by(WaitReason::NoCandidate)
    );
}
