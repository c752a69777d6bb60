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
