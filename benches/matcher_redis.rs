//! The matcher against Redis GEOSEARCH at city scale: 500,000 riders uniform within ±15 km
//! of 31.23, 121.47, all available, loaded into `RiderIndex` (bulk) and into one Redis geo
//! set (GEOADD, pipelined); then 10,000 random query points, each asked of both: the 10
//! nearest within 3 km. Prints load times, per-query p50/p99 of each and their ratio, and
//! checks the answers agree (at least 9 of 10 ids shared per query on average: Redis
//! stores 52-bit geohashes, ~0.6 m, so near-ties may rank differently), failing loudly if
//! they do not.
//!
//! Redis is asked one query at a time over a synchronous connection, as a service would
//! that kept its riders there. The geo set is a bench-only key, deleted at the end (also
//! on failure). Without a reachable Redis the bench says so and exits 0.
//!
//! Run: `cargo bench --bench matcher_redis` (REDIS_URL overrides redis://127.0.0.1:6379/0).

mod common;

use common::{fmt_ns, spread, Spread};
use criterion::black_box;
use dispatch_actors::domain::{GeoPoint, RiderId};
use dispatch_actors::matcher::RiderIndex;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const RADIUS_M: f64 = 3_000.0;
const K: usize = 10;
/// Members per GEOADD in the load pipeline.
const CHUNK: usize = 10_000;
/// Least mean number of ids (of 10) the two answers must share.
const MIN_MEAN_SHARED: f64 = 9.0;
/// Largest distance beyond the matcher's 10th at which a rider only Redis returned still
/// counts as a tie: Redis keeps positions as 52-bit geohash cell centres (±0.3 m here).
const MAX_TIE_GAP_M: f64 = 2.0;

struct Sizes {
    riders: usize,
    queries: usize,
}

fn url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// The bench's geo set; deleted when dropped, so a failed check leaves nothing behind.
struct GeoKey {
    conn: redis::Connection,
    key: String,
}

impl Drop for GeoKey {
    fn drop(&mut self) {
        let deleted: redis::RedisResult<i64> =
            redis::cmd("DEL").arg(&self.key).query(&mut self.conn);
        if let Err(e) = deleted {
            eprintln!("could not delete {}: {e}", self.key);
        }
    }
}

fn connect() -> Result<redis::Connection, String> {
    let client = redis::Client::open(url()).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    redis::cmd("PING")
        .query::<String>(&mut conn)
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

fn geosearch(conn: &mut redis::Connection, key: &str, at: (f64, f64)) -> Vec<String> {
    redis::cmd("GEOSEARCH")
        .arg(key)
        .arg("FROMLONLAT")
        .arg(at.1)
        .arg(at.0)
        .arg("BYRADIUS")
        .arg(RADIUS_M / 1000.0)
        .arg("km")
        .arg("ASC")
        .arg("COUNT")
        .arg(K)
        .query(conn)
        .expect("GEOSEARCH")
}

/// GEOSEARCH calls and microseconds spent in them so far, from the server's own count
/// (INFO commandstats): the server's share of each round trip.
fn geosearch_stats(conn: &mut redis::Connection) -> (u64, u64) {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(conn)
        .expect("INFO");
    let Some(line) = info.lines().find(|l| l.starts_with("cmdstat_geosearch:")) else {
        return (0, 0);
    };
    let field = |name: &str| {
        line.split([':', ','])
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("calls"), field("usec"))
}

fn main() {
    let sizes = if common::full_run() {
        Sizes {
            riders: 500_000,
            queries: 10_000,
        }
    } else {
        Sizes {
            riders: 5_000,
            queries: 200,
        }
    };
    let conn = match connect() {
        Ok(c) => c,
        Err(e) => {
            println!(
                "matcher_redis skipped: Redis not reachable at {} ({e})",
                url()
            );
            return;
        }
    };
    let mut geo = GeoKey {
        conn,
        key: format!("dispatchd:bench:matcher_redis:{}", std::process::id()),
    };

    let riders = common::riders(sizes.riders, 42, 1.0);
    let queries = common::points(sizes.queries, 4242);

    let t = Instant::now();
    let index = RiderIndex::bulk(riders.clone());
    let index_load = t.elapsed();

    let t = Instant::now();
    for chunk in riders.chunks(CHUNK) {
        let mut add = redis::cmd("GEOADD");
        add.arg(&geo.key);
        for (id, at, _) in chunk {
            add.arg(at.lon()).arg(at.lat()).arg(id.as_str());
        }
        let mut pipe = redis::pipe();
        pipe.add_command(add).ignore();
        pipe.query::<()>(&mut geo.conn).expect("GEOADD");
    }
    let redis_load = t.elapsed();
    let stored: usize = redis::cmd("ZCARD")
        .arg(&geo.key)
        .query(&mut geo.conn)
        .expect("ZCARD");
    assert_eq!(stored, sizes.riders, "every rider in the geo set");

    let none = HashSet::new();
    let mut matcher_ns = Vec::with_capacity(queries.len());
    let mut matcher_ids: Vec<Vec<RiderId>> = Vec::with_capacity(queries.len());
    for q in &queries {
        let t = Instant::now();
        let found = index.nearest(black_box(*q), K, RADIUS_M, true, &none);
        matcher_ns.push(t.elapsed().as_nanos() as u64);
        matcher_ids.push(found.into_iter().map(|n| n.rider_id).collect());
    }

    // The loopback round trip alone, to tell transport from search.
    let mut ping_ns = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let t = Instant::now();
        redis::cmd("PING")
            .query::<String>(&mut geo.conn)
            .expect("PING");
        ping_ns.push(t.elapsed().as_nanos() as u64);
    }

    let before = geosearch_stats(&mut geo.conn);
    let mut redis_ns = Vec::with_capacity(queries.len());
    let mut redis_ids: Vec<Vec<String>> = Vec::with_capacity(queries.len());
    for q in &queries {
        let t = Instant::now();
        let found = geosearch(&mut geo.conn, &geo.key, (q.lat(), q.lon()));
        redis_ns.push(t.elapsed().as_nanos() as u64);
        redis_ids.push(found);
    }
    let after = geosearch_stats(&mut geo.conn);
    let server_us_per_call = (after.1 - before.1) as f64 / (after.0 - before.0).max(1) as f64;

    // Agreement: ids shared per query (order aside), and queries whose lists differ.
    // Where a Redis id is not in the matcher's list, how much farther it is (by the
    // matcher's own distance) than the matcher's last: a near-tie should be under a metre.
    let mut shared_total = 0usize;
    let mut differing = 0usize;
    let mut short = 0usize;
    let mut worst_gap_m = 0.0f64;
    for ((m, r), q) in matcher_ids.iter().zip(&redis_ids).zip(&queries) {
        let theirs: HashSet<&str> = r.iter().map(String::as_str).collect();
        let shared = m.iter().filter(|id| theirs.contains(id.as_str())).count();
        shared_total += shared;
        differing += usize::from(shared != m.len() || m.len() != r.len());
        short += usize::from(m.len() < K || r.len() < K);
        let ours: HashSet<&str> = m.iter().map(RiderId::as_str).collect();
        let last_m = m
            .last()
            .map_or(0.0, |id| q.distance_m(&position(&riders, id.as_str())));
        for extra in r.iter().filter(|id| !ours.contains(id.as_str())) {
            worst_gap_m = worst_gap_m.max(q.distance_m(&position(&riders, extra)) - last_m);
        }
    }
    let mean_shared = shared_total as f64 / queries.len() as f64;

    let m = spread(matcher_ns);
    let r = spread(redis_ns);
    report(&sizes, index_load, redis_load, &m, &r);
    println!(
        "  of a GEOSEARCH round trip: server time {server_us_per_call:.1} µs per call (INFO commandstats); a PING round trip {}",
        spread(ping_ns).show_ns()
    );
    println!(
        "  agreement: {mean_shared:.3} of {K} ids shared per query on average; {differing} of {} queries differ in any id; {short} found fewer than {K}",
        queries.len()
    );
    println!(
        "  ids only Redis returned lie at most {worst_gap_m:.2} m beyond the matcher's 10th (ties within geohash precision, ~0.6 m)"
    );
    drop(geo); // the geo set goes before any failure below
    assert!(
        mean_shared >= MIN_MEAN_SHARED,
        "the matcher and Redis disagree: {mean_shared:.3} of {K} ids shared per query on average (want >= {MIN_MEAN_SHARED})"
    );
    assert!(
        worst_gap_m < MAX_TIE_GAP_M,
        "Redis returned a rider {worst_gap_m:.2} m beyond the matcher's 10th: more than a geohash tie (want < {MAX_TIE_GAP_M} m)"
    );
}

/// A rider's position from its id (`r_<index>`).
fn position(riders: &[(RiderId, GeoPoint, bool)], id: &str) -> GeoPoint {
    let i: usize = id
        .strip_prefix("r_")
        .and_then(|n| n.parse().ok())
        .expect("a bench rider id");
    riders[i].1
}

fn report(sizes: &Sizes, index_load: Duration, redis_load: Duration, m: &Spread, r: &Spread) {
    println!(
        "matcher vs Redis GEOSEARCH ({} riders, all available, city ±{} km; {} queries: nearest {K} within {} km)",
        sizes.riders,
        common::HALF_WIDTH_M / 1000.0,
        sizes.queries,
        RADIUS_M / 1000.0
    );
    println!(
        "  load: RiderIndex::bulk {:.2} s; Redis GEOADD pipelined ({CHUNK} per command) {:.2} s",
        index_load.as_secs_f64(),
        redis_load.as_secs_f64()
    );
    println!("  matcher (R-tree, in process):     {}", m.show_ns());
    println!("  Redis GEOSEARCH (sync, loopback): {}", r.show_ns());
    println!(
        "  ratio Redis / matcher: p50 {:.0}x, p99 {:.0}x (target >= 50x); matcher p50 {} vs Redis p50 {}",
        r.p50 as f64 / m.p50.max(1) as f64,
        r.p99 as f64 / m.p99.max(1) as f64,
        fmt_ns(m.p50),
        fmt_ns(r.p50)
    );
}
