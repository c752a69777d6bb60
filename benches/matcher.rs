//! Matcher benchmarks: `dispatch_actors::matcher::RiderIndex` with 100,000 riders spread
//! over a city about 30 km across (centred on 31.23, 121.47).
//!
//! - `nearest10_3km_rtree`: the 10 nearest *available* riders within 3 km of a random point
//!   (the query dispatch makes for every offer round);
//! - `upsert_move_50m`: one position update that moves a rider ~50 m (remove + insert);
//! - `nearest10_3km_bruteforce`: the baseline, a haversine scan of all 100k riders for the
//!   same answer, so the R-tree's gain can be stated as a ratio.
//!
//! Criterion reports means; dispatch cares about tails, so before the criterion groups the
//! binary also times 10,000 single operations of each kind with `Instant` and prints
//! p50/p99 (each sample includes one `Instant::now()` pair, a few tens of ns).
//!
//! Run: `cargo bench --bench matcher`.

use criterion::{black_box, criterion_group, BenchmarkId, Criterion};
use dispatch_actors::domain::{GeoPoint, RiderId};
use dispatch_actors::matcher::{Nearby, RiderIndex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const RIDERS: usize = 100_000;
const CITY_CENTRE: (f64, f64) = (31.23, 121.47);
/// Half the city's width: riders and queries fall within ±15 km of the centre.
const HALF_WIDTH_M: f64 = 15_000.0;
const RADIUS_M: f64 = 3_000.0;
const K: usize = 10;
/// Share of riders that may take an offer (the rest are busy or already offered).
const AVAILABLE_SHARE: f64 = 0.8;
const MOVE_M: f64 = 50.0;
const PERCENTILE_SAMPLES: usize = 10_000;

struct City {
    riders: Vec<(RiderId, GeoPoint, bool)>,
    index: RiderIndex,
    queries: Vec<GeoPoint>,
}

fn random_point(rng: &mut StdRng) -> GeoPoint {
    let centre = GeoPoint::new(CITY_CENTRE.0, CITY_CENTRE.1).unwrap();
    let north = rng.gen_range(-HALF_WIDTH_M..HALF_WIDTH_M);
    let east = rng.gen_range(-HALF_WIDTH_M..HALF_WIDTH_M);
    centre.destination(0.0, north).destination(90.0, east)
}

fn city() -> City {
    let mut rng = StdRng::seed_from_u64(42);
    let riders: Vec<(RiderId, GeoPoint, bool)> = (0..RIDERS)
        .map(|i| {
            (
                RiderId::parse(&format!("r_{i}")).unwrap(),
                random_point(&mut rng),
                rng.gen_bool(AVAILABLE_SHARE),
            )
        })
        .collect();
    let index = RiderIndex::bulk(riders.clone());
    let queries = (0..4096).map(|_| random_point(&mut rng)).collect();
    City {
        riders,
        index,
        queries,
    }
}

/// The baseline: haversine to every rider, keep the available ones within the radius,
/// then the `k` nearest.
fn brute_nearest(
    riders: &[(RiderId, GeoPoint, bool)],
    at: GeoPoint,
    k: usize,
    radius_m: f64,
) -> Vec<(RiderId, f64)> {
    let mut within: Vec<(RiderId, f64)> = riders
        .iter()
        .filter(|(_, _, available)| *available)
        .filter_map(|(id, p, _)| {
            let d = at.distance_m(p);
            (d <= radius_m).then(|| (id.clone(), d))
        })
        .collect();
    if within.len() > k {
        within.select_nth_unstable_by(k - 1, |a, b| a.1.total_cmp(&b.1));
        within.truncate(k);
    }
    within.sort_by(|a, b| a.1.total_cmp(&b.1));
    within
}

/// Moves for the upsert bench: distinct riders, each with a point ~50 m away. Applying
/// the list alternately "there" and "back" keeps every move ~50 m long for ever.
struct Moves {
    ids: Vec<RiderId>,
    there: Vec<GeoPoint>,
    back: Vec<GeoPoint>,
}

fn moves(c: &City, n: usize) -> Moves {
    let mut rng = StdRng::seed_from_u64(7);
    let mut picked = HashSet::new();
    while picked.len() < n {
        picked.insert(rng.gen_range(0..c.riders.len()));
    }
    let mut m = Moves {
        ids: Vec::with_capacity(n),
        there: Vec::with_capacity(n),
        back: Vec::with_capacity(n),
    };
    for i in picked {
        let (id, p, _) = &c.riders[i];
        m.ids.push(id.clone());
        m.back.push(*p);
        m.there
            .push(p.destination(rng.gen_range(0.0..360.0), MOVE_M));
    }
    m
}

impl Moves {
    /// The `step`-th move: which rider, to where.
    fn get(&self, step: usize) -> (&RiderId, GeoPoint) {
        let j = step % self.ids.len();
        let p = if (step / self.ids.len()).is_multiple_of(2) {
            self.there[j]
        } else {
            self.back[j]
        };
        (&self.ids[j], p)
    }
}

fn percentiles(mut ns: Vec<u64>) -> (u64, u64, u64) {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)];
    (at(0.50), at(0.99), *ns.last().unwrap())
}

fn fmt_ns(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.2} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}

/// Checks the index against the scan, then times single operations for p50/p99.
fn print_percentiles() {
    let mut c = city();
    let none = HashSet::new();

    // The two must agree, or the ratio below compares different work.
    for q in c.queries.iter().take(200) {
        let got: Vec<f64> = c
            .index
            .nearest(*q, K, RADIUS_M, true, &none)
            .iter()
            .map(|n| n.distance_m)
            .collect();
        let want: Vec<f64> = brute_nearest(&c.riders, *q, K, RADIUS_M)
            .iter()
            .map(|w| w.1)
            .collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "index {g} vs scan {w}");
        }
    }
    let mean_found = c
        .queries
        .iter()
        .take(1000)
        .map(|q| c.index.nearest(*q, K, RADIUS_M, true, &none).len())
        .sum::<usize>() as f64
        / 1000.0;

    let mut nearest_ns = Vec::with_capacity(PERCENTILE_SAMPLES);
    for i in 0..PERCENTILE_SAMPLES {
        let q = c.queries[i % c.queries.len()];
        let t = Instant::now();
        let r: Vec<Nearby> = c.index.nearest(black_box(q), K, RADIUS_M, true, &none);
        nearest_ns.push(t.elapsed().as_nanos() as u64);
        black_box(r);
    }

    let m = moves(&c, PERCENTILE_SAMPLES);
    let mut upsert_ns = Vec::with_capacity(PERCENTILE_SAMPLES);
    for step in 0..PERCENTILE_SAMPLES {
        let (id, p) = m.get(step);
        let t = Instant::now();
        c.index.upsert(black_box(id), black_box(p), true);
        upsert_ns.push(t.elapsed().as_nanos() as u64);
    }

    let mut brute_ns = Vec::with_capacity(1000);
    for i in 0..1000 {
        let q = c.queries[i % c.queries.len()];
        let t = Instant::now();
        let r = brute_nearest(&c.riders, black_box(q), K, RADIUS_M);
        brute_ns.push(t.elapsed().as_nanos() as u64);
        black_box(r);
    }

    let (n50, n99, nmax) = percentiles(nearest_ns);
    let (u50, u99, umax) = percentiles(upsert_ns);
    let (b50, b99, bmax) = percentiles(brute_ns);
    println!(
        "matcher percentiles ({RIDERS} riders, {:.0}% available, city ±{} km; {mean_found:.1} riders found per query on average)",
        AVAILABLE_SHARE * 100.0,
        HALF_WIDTH_M / 1000.0
    );
    println!(
        "  nearest-{K} within {} km (R-tree), {PERCENTILE_SAMPLES} ops: p50 {}  p99 {}  max {}",
        RADIUS_M / 1000.0,
        fmt_ns(n50),
        fmt_ns(n99),
        fmt_ns(nmax)
    );
    println!(
        "  upsert moving a rider {MOVE_M} m,      {PERCENTILE_SAMPLES} ops: p50 {}  p99 {}  max {}",
        fmt_ns(u50),
        fmt_ns(u99),
        fmt_ns(umax)
    );
    println!(
        "  nearest-{K} brute-force scan,         1000 ops: p50 {}  p99 {}  max {}",
        fmt_ns(b50),
        fmt_ns(b99),
        fmt_ns(bmax)
    );
    println!(
        "  p50 ratio brute-force / R-tree: {:.0}x",
        b50 as f64 / n50.max(1) as f64
    );
}

fn bench_matcher(cr: &mut Criterion) {
    let mut c = city();
    let none = HashSet::new();
    let mut g = cr.benchmark_group("matcher_100k");
    g.warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));

    let mut i = 0usize;
    g.bench_function(BenchmarkId::new("nearest10_3km", "rtree"), |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let q = c.queries[i % c.queries.len()];
            c.index.nearest(black_box(q), K, RADIUS_M, true, &none)
        })
    });

    let mut i = 0usize;
    g.bench_function(BenchmarkId::new("nearest10_3km", "bruteforce"), |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let q = c.queries[i % c.queries.len()];
            brute_nearest(&c.riders, black_box(q), K, RADIUS_M)
        })
    });

    let m = moves(&c, 4096);
    let mut step = 0usize;
    g.bench_function(BenchmarkId::new("upsert_move_50m", "rtree"), |b| {
        b.iter(|| {
            let (id, p) = m.get(step);
            step += 1;
            c.index.upsert(black_box(id), black_box(p), true);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = bench_matcher
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: there criterion runs
    // each bench once as a smoke test, and the slow percentile pass is skipped.
    if std::env::args().any(|a| a == "--bench") {
        print_percentiles();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
