//! Tracking-app devices survive `kill -9`: a registered device still reports after a
//! restart, a revoked one stays refused.

use crate::harness::*;
use crate::support::*;
use serde_json::json;

/// `POST /api/v1/owntracks` as OwnTracks sends it: Basic auth rider id / device id.
async fn owntracks(s: &Server, rider: &str, device: &str, at: (f64, f64)) -> u16 {
    let body = json!({"_type": "location", "lat": at.0, "lon": at.1, "tst": now_ms() / 1000,
        "acc": 5, "vel": 12, "tid": "RD"});
    reqwest::Client::new()
        .post(s.url("/api/v1/owntracks"))
        .basic_auth(rider, Some(device))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Whether `pos` is `at` (to a nanodegree: coordinates pass through JSON and Redis).
fn at(pos: Option<(f64, f64)>, at: (f64, f64)) -> bool {
    pos.is_some_and(|p| (p.0 - at.0).abs() < 1e-9 && (p.1 - at.1).abs() < 1e-9)
}

/// The rider's position as the dispatcher's fleet list shows it.
async fn position(api: &Api, rider: &str) -> Option<(f64, f64)> {
    let all = api.get("/riders", Some(&api.dispatcher)).await.expect(200);
    let r = all
        .as_array()?
        .iter()
        .find(|r| r["rider_id"] == rider)?
        .clone();
    Some((
        r["location"]["lat"].as_f64()?,
        r["location"]["lon"].as_f64()?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_device_survives_a_restart_and_a_revoked_one_stays_refused() {
    let (prefix, _cleanup) = fresh_keys();
    let s = Server::start_ready(MAIN_REDIS, &prefix, &[]).await;
    let api = s.api();
    let (rider, _) = api.create_rider().await;
    let path = format!("/riders/{rider}/devices");
    let register = || async {
        let r = api.post(&path, Some(&api.dispatcher), &json!({})).await;
        r.expect(201)["device_id"].as_str().unwrap().to_string()
    };
    let (kept, revoked) = (register().await, register().await);
    let del = format!("/riders/{rider}/devices/{revoked}");
    let r = api
        .raw(
            reqwest::Method::DELETE,
            &del,
            Some(&api.dispatcher),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    let a = offset(SHOP, 100.0, 0.0);
    assert_eq!(owntracks(&s, &rider, &kept, a).await, 200);
    assert!(at(position(&api, &rider).await, a));
    // Positions are written per tick: wait until this one is in Redis.
    let conn = connect(MAIN_REDIS).await;
    let key = format!("{prefix}positions");
    wait_for("the position written", WAIT, || {
        let (mut conn, key, rider) = (conn.clone(), key.clone(), rider.clone());
        async move { hget::<Option<String>>(&mut conn, key, &rider).await }
    })
    .await;

    s.kill9();
    let s = Server::start_ready(MAIN_REDIS, &prefix, &[]).await;
    let api = s.api();
    let b = offset(SHOP, 150.0, 0.0);
    assert_eq!(
        owntracks(&s, &rider, &revoked, b).await,
        401,
        "revoked stays revoked"
    );
    assert!(at(position(&api, &rider).await, a));
    // One second later than the fix before the restart, so it is newer.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        owntracks(&s, &rider, &kept, b).await,
        200,
        "registered before the restart"
    );
    assert!(at(position(&api, &rider).await, b));
}

/// Several nodes (docs/cluster.md, "Tracking apps"): a device registered on one node
/// reports through another, the fix reaching the rider's actor where it lives; a device
/// revoked on one node is refused on the other at once; and once the rider's node is
/// gone, a node its tracker reports to takes the rider up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracker_reports_through_any_node() {
    let (prefix, _cleanup) = fresh_keys();
    let a = Server::start_ready(MAIN_REDIS, &prefix, &crate::nodes::node_env("dev-a")).await;
    let b = Server::start_ready(MAIN_REDIS, &prefix, &crate::nodes::node_env("dev-b")).await;
    let (on_a, on_b) = (a.api(), b.api());
    // The rider is made on A: its actor lives there (no socket anywhere).
    let (rider, _) = on_a.create_rider().await;
    let path = format!("/riders/{rider}/devices");
    let register = |api: &Api| {
        let (api, path) = (api.clone(), path.clone());
        async move {
            let r = api.post(&path, Some(&api.dispatcher), &json!({})).await;
            r.expect(201)["device_id"].as_str().unwrap().to_string()
        }
    };
    let (kept, revoked) = (register(&on_a).await, register(&on_a).await);

    // A fix through B reaches the rider on A (a 503 is "retry": the app sends it again).
    let p = offset(SHOP, 100.0, 0.0);
    wait_for("B to pass the fix on", WAIT, || {
        let (b, rider, kept) = (&b, &rider, &kept);
        async move { (owntracks(b, rider, kept, p).await == 200).then_some(()) }
    })
    .await;
    assert!(at(position(&on_a, &rider).await, p), "A has the fix B took");

    // Revoked on B: refused on A (and B) from then on, and nothing moves.
    let del = format!("/riders/{rider}/devices/{revoked}");
    let r = on_b
        .raw(
            reqwest::Method::DELETE,
            &del,
            Some(&on_b.dispatcher),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    let q = offset(SHOP, 150.0, 0.0);
    assert_eq!(owntracks(&a, &rider, &revoked, q).await, 401);
    assert_eq!(owntracks(&b, &rider, &revoked, q).await, 401);
    assert!(
        at(position(&on_a, &rider).await, p),
        "a revoked device moved nothing"
    );

    // A dies: B takes the rider up on its tracker's next fix (a fix may meet 503 while B
    // still counts A among the living: the app retries).
    a.kill9();
    let r = offset(SHOP, 200.0, 0.0);
    wait_for(
        "B to take the tracker's fix",
        std::time::Duration::from_secs(20),
        || {
            let (b, rider, kept) = (&b, &rider, &kept);
            async move { (owntracks(b, rider, kept, r).await == 200).then_some(()) }
        },
    )
    .await;
    assert!(at(position(&on_b, &rider).await, r), "B runs the rider now");
}
