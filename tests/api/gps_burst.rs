//! A burst of GPS fixes on one rider socket, sent faster than the rider's actor applies
//! them: the rider ends where its last fix says, and every fix is either applied (counted
//! in `dispatch_gps_fixes_total`) or shed, replaced by a newer one while it waited
//! (`dispatch_gps_fixes_shed_total`). How many are shed depends on timing, so nothing
//! here asserts that some were; what is asserted holds either way.

use crate::helpers::*;
use serde_json::json;
use std::time::Duration;

const BURST: usize = 1_000;
const SHED: &str = "dispatch_gps_fixes_shed_total";
const FIXES: &str = "dispatch_gps_fixes_total";

/// The sum of every sample of `name` on /metrics. Tests share the process's recorder, so
/// another test's fixes may add to it: a test can rely on its own share, not the total.
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.get("/metrics", None).await.text;
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// Waits until `riders/nearby` lists the rider at exactly `at`.
async fn wait_located(app: &TestApp, rider_id: &str, at: (f64, f64)) {
    let want = json!({"lat": at.0, "lon": at.1});
    wait_for("the rider at its last fix", Duration::from_secs(10), || {
        let want = want.clone();
        async move {
            let r = app.nearby_rider(rider_id).await?;
            (r["location"] == want).then_some(())
        }
    })
    .await;
}

/// Reads the rider's frames until none comes for 500 ms; how many were `invalid_location`.
async fn count_invalid_location(r: &mut Rider) -> usize {
    let mut n = 0;
    while let Some(v) = r.ws.next_json(Duration::from_millis(500)).await {
        assert_ne!(v["code"], "rate_limited", "{v}");
        if v["type"] == "error" && v["code"] == "invalid_location" {
            n += 1;
        }
    }
    n
}

#[actix_web::test]
async fn a_burst_of_fixes_ends_at_the_last_and_each_fix_is_applied_or_shed() {
    let app = spawn_app(|s| {
        s.rate_limit.rider_fixes_per_10s = 1_000_000;
        s.rate_limit.rider_fix_burst = 1_000_000;
        // Room for an `error` frame per fix while the test is still sending.
        s.server.ws_queue_frames = 2 * BURST;
    })
    .await;
    let mut r = app.rider_at(SHOP).await;
    let (shed_before, fixes_before) = (metric(&app, SHED).await, metric(&app, FIXES).await);

    // A plausible track: 0.2 m east every 10 ms of fix time (20 m/s), sent back to back.
    let start_ts = r.last_ts;
    let mut last = SHOP;
    for i in 1..=BURST {
        last = offset(SHOP, 0.0, 0.2 * i as f64);
        let ts = start_ts + 10 * i as u64;
        r.send(json!({"type": "location", "lat": last.0, "lon": last.1, "ts_ms": ts}))
            .await;
    }
    r.pos = Some(last);
    r.last_ts = start_ts + 10 * BURST as u64;
    wait_located(&app, &r.id, last).await;

    // The same again, but every fix before the last is invalid: an applied one answers
    // `invalid_location`, a shed one answers nothing. So this rider's own count of shed
    // fixes is what did not answer.
    let valid = offset(SHOP, 0.0, 0.2 * BURST as f64 + 1.0);
    for _ in 1..BURST {
        r.send(json!({"type": "location", "lat": 91.0, "lon": valid.1, "ts_ms": now_ms()}))
            .await;
    }
    let ts = r.ts_for(valid);
    r.send(json!({"type": "location", "lat": valid.0, "lon": valid.1, "ts_ms": ts}))
        .await;
    wait_located(&app, &r.id, valid).await;
    // The last fix is applied after every fix before it, so every answer is on its way.
    let answered = count_invalid_location(&mut r).await;
    let shed_here = (BURST - 1 - answered) as f64;

    let shed = metric(&app, SHED).await - shed_before;
    let applied = metric(&app, FIXES).await - fixes_before;
    assert!(
        shed >= shed_here,
        "{shed_here} fixes of the second burst went unanswered, {shed} counted as shed"
    );
    assert!(
        shed + applied >= (2 * BURST) as f64,
        "{} fixes sent, {applied} applied + {shed} shed",
        2 * BURST
    );
    let text = app.get("/metrics", None).await.text;
    assert!(text.contains(&format!("# TYPE {SHED} counter")), "{text}");
}
