//! Matcher queries while riders move, at city scale: 500,000 riders uniform within ±15 km
//! of 31.23, 121.47, 80 % available; the query is the one dispatch makes, the 10 nearest
//! available riders within 3 km of a random point. Position updates move a random rider
//! ~50 m (a fix every 10 s per rider at 5 m/s), at 50,000 per second.
//!
//! (a) No ingest: queries on a bulk-loaded index, and on one built by inserting riders
//!     one by one, as the MatcherActor builds it from riders coming online.
//! (b) Index level under ingest: updates (applied as the MatcherActor's `UpsertRider`
//!     handler does: upsert, busy-until, shift end) and queries interleaved on one thread,
//!     each at its paced arrival time, in arrival order (the actor's FIFO). Per query: its
//!     own search time (service) and the time from its arrival to its answer, behind
//!     whatever updates arrived first (sojourn).
//!     Three indexes: the trees following every move (slack 0, the baseline), and with
//!     the default `dispatch.index_slack_m` (50 m), bulk-loaded and built by upserts.
//! (c) Through the MatcherActor on its own Arbiter (as in production): one task sends
//!     `UpsertRider` by `try_send` at 50,000/s (as RiderActors do; a full mailbox drops the
//!     update, counted here) while another times the round trip of `FindCandidates` and
//!     `FindNearestRiders`, alternately, at 2,000 queries/s; first without the updates.
//!
//! Every index is checked against a brute-force scan of the riders' final positions.
//!
//! Run: `cargo bench --bench matcher_ingest`.

#[path = "ingest/actor.rs"]
mod actor;
mod common;
#[path = "ingest/moves.rs"]
mod moves;

use common::{fmt_ns, spread, Spread};
use criterion::black_box;
use dispatch_actors::domain::{GeoPoint, RiderId};
use dispatch_actors::matcher::RiderIndex;
use moves::Moves;
use std::collections::HashSet;
use std::time::Instant;

pub const RADIUS_M: f64 = 3_000.0;
pub const K: usize = 10;
const AVAILABLE_SHARE: f64 = 0.8;
pub const UPDATES_PER_S: f64 = 50_000.0;
/// Queries per second in (b): frequent enough for 20,000 samples in 4 s, far below what
/// the thread could answer, so each meets the index as the updates left it.
const INDEX_QUERIES_PER_S: f64 = 5_000.0;
/// Target for the nearest-10 query at the index, p99.
const TARGET_P99_NS: u64 = 20_000;

pub struct Sizes {
    pub riders: usize,
    /// Queries timed in (a).
    pub queries: usize,
    /// Length of the paced run in (b).
    pub index_run_s: f64,
    /// Round trips timed in each phase of (c).
    pub actor_queries: usize,
}

fn main() {
    let sizes = if common::full_run() {
        Sizes {
            riders: 500_000,
            queries: 10_000,
            index_run_s: 4.0,
            actor_queries: 10_000,
        }
    } else {
        Sizes {
            riders: 5_000,
            queries: 200,
            index_run_s: 0.1,
            actor_queries: 200,
        }
    };
    let riders = common::riders(sizes.riders, 42, AVAILABLE_SHARE);
    let queries = common::points(sizes.queries, 4242);
    println!(
        "matcher under ingest ({} riders, {:.0}% available, city ±{} km; nearest {K} available within {} km; updates move a rider {} m at {} /s)",
        sizes.riders,
        AVAILABLE_SHARE * 100.0,
        common::HALF_WIDTH_M / 1000.0,
        RADIUS_M / 1000.0,
        moves::MOVE_M,
        UPDATES_PER_S
    );

    // (a)
    let t = Instant::now();
    let mut bulk = RiderIndex::bulk(riders.clone());
    let bulk_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut inserted = RiderIndex::default();
    for (id, at, available) in &riders {
        inserted.upsert(id, *at, *available);
    }
    let inserted_s = t.elapsed().as_secs_f64();
    println!("(a) no ingest, {} queries each", queries.len());
    let a_bulk = time_queries(&bulk, &queries);
    println!(
        "  bulk-loaded index ({bulk_s:.2} s to load):           {}",
        a_bulk.show_ns()
    );
    let a_inserted = time_queries(&inserted, &queries);
    println!(
        "  index built by one-by-one upserts ({inserted_s:.2} s): {}",
        a_inserted.show_ns()
    );

    // (b)
    println!(
        "(b) index level, one thread, {:.0} updates/s and {:.0} queries/s for {} s",
        UPDATES_PER_S, INDEX_QUERIES_PER_S, sizes.index_run_s
    );
    let mut paced_results = Vec::new();
    // The baseline: the trees follow every move (no slack), as before dispatch.index_slack_m.
    let mut exact = RiderIndex::bulk(riders.clone()).with_slack_m(0.0);
    for (name, index) in [
        ("bulk-loaded, slack 0 (trees follow every move)", &mut exact),
        ("bulk-loaded, slack 50 m", &mut bulk),
        ("built by upserts, slack 50 m", &mut inserted),
    ] {
        let mut moves = Moves::new(&riders, 7);
        let r = paced(index, &riders, &mut moves, &queries, sizes.index_run_s);
        r.print(name);
        check_against_scan(index, &riders, moves.positions(), &queries);
        paced_results.push(r);
    }

    // (c)
    println!(
        "(c) through the MatcherActor (own Arbiter, mailbox {}), {} round trips per phase at {:.0}/s",
        dispatch_actors::actors::matcher::MAILBOX_CAPACITY,
        sizes.actor_queries,
        actor::QUERIES_PER_S
    );
    let c = actor::run(&riders, &queries, &sizes);
    c.print();

    let worst = a_bulk.p99.max(a_inserted.p99).max(
        paced_results
            .iter()
            .map(|r| r.service.p99)
            .max()
            .unwrap_or(0),
    );
    println!(
        "  target: index query p99 <= {}: worst index-level p99 above is {} ({})",
        fmt_ns(TARGET_P99_NS),
        fmt_ns(worst),
        if worst <= TARGET_P99_NS {
            "met"
        } else {
            "MISSED"
        }
    );
}

fn time_queries(index: &RiderIndex, queries: &[GeoPoint]) -> Spread {
    let none = HashSet::new();
    let mut ns = Vec::with_capacity(queries.len());
    for q in queries {
        let t = Instant::now();
        let found = index.nearest(black_box(*q), K, RADIUS_M, true, &none);
        ns.push(t.elapsed().as_nanos() as u64);
        black_box(found);
    }
    spread(ns)
}

/// As the MatcherActor's `UpsertRider` handler applies a position update.
pub fn apply_update(index: &mut RiderIndex, id: &RiderId, at: GeoPoint, available: bool) {
    index.upsert(id, at, available);
    index.set_busy_until(id, None);
    index.set_shift_end(id, None);
}

struct Paced {
    service: Spread,
    sojourn: Spread,
    update: Spread,
    updates: usize,
    queries: usize,
    wall_s: f64,
    busy_s: f64,
}

impl Paced {
    fn print(&self, name: &str) {
        println!(
            "  {name}: {} updates and {} queries in {:.2} s; thread busy {:.1}% of it",
            self.updates,
            self.queries,
            self.wall_s,
            100.0 * self.busy_s / self.wall_s
        );
        println!(
            "    query, own search time:        {}",
            self.service.show_ns()
        );
        println!(
            "    query, arrival to answer:      {}",
            self.sojourn.show_ns()
        );
        println!(
            "    update (upsert + two setters): {}",
            self.update.show_ns()
        );
    }
}

/// Updates and queries at their paced rates on one thread, each handled when its arrival
/// time has come, in arrival order (an update first on a tie).
fn paced(
    index: &mut RiderIndex,
    riders: &[(RiderId, GeoPoint, bool)],
    moves: &mut Moves,
    queries: &[GeoPoint],
    run_s: f64,
) -> Paced {
    let total_updates = (UPDATES_PER_S * run_s) as usize;
    let total_queries = (INDEX_QUERIES_PER_S * run_s) as usize;
    // Drawn before the clock starts: the run times the index, not the RNG.
    let planned: Vec<(usize, GeoPoint)> = (0..total_updates).map(|_| moves.next()).collect();
    let none = HashSet::new();
    let mut service = Vec::with_capacity(total_queries);
    let mut sojourn = Vec::with_capacity(total_queries);
    let mut update = Vec::with_capacity(total_updates);
    let (mut u, mut q) = (0usize, 0usize);
    let start = Instant::now();
    while u < total_updates || q < total_queries {
        let now_s = start.elapsed().as_secs_f64();
        let update_at_s = u as f64 / UPDATES_PER_S;
        let query_at_s = q as f64 / INDEX_QUERIES_PER_S;
        let update_due = u < total_updates && update_at_s <= now_s;
        let query_due = q < total_queries && query_at_s <= now_s;
        if update_due && (!query_due || update_at_s <= query_at_s) {
            let (i, at) = planned[u];
            let (id, _, available) = &riders[i];
            let t = Instant::now();
            apply_update(index, black_box(id), black_box(at), *available);
            update.push(t.elapsed().as_nanos() as u64);
            u += 1;
        } else if query_due {
            let at = queries[q % queries.len()];
            let t = Instant::now();
            let found = index.nearest(black_box(at), K, RADIUS_M, true, &none);
            let done = Instant::now();
            black_box(found);
            service.push((done - t).as_nanos() as u64);
            let answered_s = (done - start).as_secs_f64();
            sojourn.push(((answered_s - query_at_s).max(0.0) * 1e9) as u64);
            q += 1;
        } else {
            std::hint::spin_loop();
        }
    }
    let wall_s = start.elapsed().as_secs_f64();
    let busy_s = (service.iter().sum::<u64>() + update.iter().sum::<u64>()) as f64 / 1e9;
    Paced {
        service: spread(service),
        sojourn: spread(sojourn),
        update: spread(update),
        updates: total_updates,
        queries: total_queries,
        wall_s,
        busy_s,
    }
}

/// The index must answer as a scan of the riders where the updates left them, or the
/// timings above measured a broken index.
pub fn check_against_scan(
    index: &RiderIndex,
    riders: &[(RiderId, GeoPoint, bool)],
    positions: &[GeoPoint],
    queries: &[GeoPoint],
) {
    assert_eq!(index.len(), riders.len());
    let none = HashSet::new();
    for q in queries.iter().take(20) {
        let mut want: Vec<f64> = riders
            .iter()
            .zip(positions)
            .filter(|((_, _, available), _)| *available)
            .map(|(_, p)| q.distance_m(p))
            .filter(|d| *d <= RADIUS_M)
            .collect();
        want.sort_by(f64::total_cmp);
        want.truncate(K);
        let got: Vec<f64> = index
            .nearest(*q, K, RADIUS_M, true, &none)
            .iter()
            .map(|n| n.distance_m)
            .collect();
        assert_eq!(
            got.len(),
            want.len(),
            "index and scan found different counts"
        );
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "index {g} m vs scan {w} m");
        }
    }
}
