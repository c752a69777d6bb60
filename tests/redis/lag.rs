//! Persistence lag of rider positions: a fix sent over a rider socket reaches Redis, and
//! each write of it is counted in `dispatch_store_position_lag_seconds` (accepted → Redis
//! acknowledged) and `dispatch_store_write_seconds{record="position"}` (round trip).

use crate::harness::*;
use crate::support::*;

const LAG: &str = "dispatch_store_position_lag_seconds_count";
const ROUND_TRIP: &str = r#"dispatch_store_write_seconds_count{record="position"}"#;

/// The value of one sample line of `/metrics` (`name` with its labels), 0 if absent.
pub(crate) async fn sample(s: &Server, name: &str) -> f64 {
    let text = reqwest::get(s.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The rider's position as Redis holds it: (lat, lon, ts_ms).
async fn stored(prefix: &str, rider: &str) -> Option<(f64, f64, u64)> {
    let mut conn = connect(MAIN_REDIS).await;
    let v: Option<String> = hget(&mut conn, format!("{prefix}positions"), rider).await;
    let v = v?;
    let mut it = v.split(',');
    Some((
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    ))
}

/// Sends one fix and waits until Redis has it and the lag histogram counted one more
/// write than `before`; returns the new count.
async fn fix_reaches_redis(
    s: &Server,
    prefix: &str,
    r: &mut Rider,
    at: (f64, f64),
    before: f64,
) -> f64 {
    r.move_to(at).await;
    let ts = r.last_ts;
    let id = r.id.clone();
    let pos = wait_for("the fix in redis", WAIT, || async {
        stored(prefix, &id).await.filter(|p| p.2 == ts)
    })
    .await;
    assert!(
        (pos.0 - at.0).abs() < 1e-9 && (pos.1 - at.1).abs() < 1e-9,
        "{pos:?} vs {at:?}"
    );
    wait_for("the lag histogram to count the write", WAIT, || async {
        let n = sample(s, LAG).await;
        (n > before).then_some(n)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixes_over_a_rider_socket_reach_redis_and_the_lag_histogram() {
    let (prefix, _cleanup) = fresh_keys();
    let s = Server::start_ready(MAIN_REDIS, &prefix, &[]).await;
    let api = s.api();
    let text = reqwest::get(s.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "# TYPE dispatch_store_position_lag_seconds histogram",
        r#"dispatch_store_write_seconds_bucket{record="position",le="0.01"}"#,
        r#"dispatch_store_write_seconds_bucket{record="order",le="0.015"}"#,
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }
    let mut r = api.rider_connected().await;
    r.online().await;
    // Two fixes, the second sent once the first is written: two writes, two samples.
    let first = fix_reaches_redis(&s, &prefix, &mut r, SHOP, sample(&s, LAG).await).await;
    let second = fix_reaches_redis(&s, &prefix, &mut r, offset(SHOP, 50.0, 0.0), first).await;
    assert!(second > first);
    assert!(sample(&s, ROUND_TRIP).await >= 2.0);
    // Every sample falls in a bucket: none is negative or lost past the last bound.
    let inf = sample(
        &s,
        r#"dispatch_store_position_lag_seconds_bucket{le="+Inf"}"#,
    )
    .await;
    assert_eq!(inf, sample(&s, LAG).await);
}
