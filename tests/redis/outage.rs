//! Accept criterion 2: a Redis outage under load.

use crate::harness::*;
use crate::support::*;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Redis stops during load → 503s (nothing acknowledged that is not stored), no panic,
/// GPS keeps flowing; Redis back → ready again, every acknowledged order is there, and
/// the latest position is flushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_answers_503_and_loses_nothing_acknowledged() {
    let redis = OwnRedis::start();
    let prefix = unique_prefix();
    let mut s = Server::start_ready(&redis.url(), &prefix, &[]).await;
    let api = s.api();
    let m = api.merchant().await;
    let c = api.customer().await;
    // Far from the shop: no offers, just GPS.
    let far = offset(SHOP, 40_000.0, 0.0);
    let mut r = new_rider_online(&api, far).await;

    // Load: a steady stream of order creations and payments while Redis goes away and
    // comes back. Every 2xx is recorded as acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let load = Load {
            api: api.clone(),
            order: api.order_body(&m, 2),
            token: c.token.clone(),
            stop: stop.clone(),
        };
        workers.push(tokio::spawn(load.run()));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.stop();
    // readyz turns 503 and state changes are refused.
    let t0 = Instant::now();
    loop {
        let st = api.get("/readyz", None).await.status;
        if st.as_u16() == 503 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(3), "readyz still {st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = api
        .post("/orders", Some(&c.token), &api.order_body(&m, 2))
        .await;
    assert_eq!(refused.status.as_u16(), 503, "{}", refused.text);
    assert_eq!(refused.code(), "unavailable");
    // GPS keeps flowing in memory: 3 m per ~100 ms, well under gps.max_speed_mps.
    let mut last = far;
    for i in 1..=5 {
        last = offset(far, 3.0 * i as f64, 0.0);
        r.move_to(last).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let riders = api.get("/riders", Some(&api.dispatcher)).await.body;
    let view = riders
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rider_id"] == r.id.as_str())
        .unwrap();
    assert!(
        (view["location"]["lat"].as_f64().unwrap() - last.0).abs() < 1e-9,
        "{view}"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(s.alive(), "dispatchd died during the outage");

    redis.run();
    s.wait_ready(Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    let mut refused = 0;
    for w in workers {
        let (a, r) = w.await.unwrap();
        acked.extend(a);
        refused += r;
    }
    assert!(refused > 0, "the outage refused nothing");
    assert!(acked.len() > 10, "too little load: {}", acked.len());
    assert!(s.alive(), "dispatchd died");

    // Every acknowledged order is in Redis with at least the acknowledged status; so is
    // the latest position.
    let mut conn = connect(&redis.url()).await;
    for (id, status) in &acked {
        let data: Option<String> = hget(&mut conn, format!("{prefix}order:{id}"), "data").await;
        let data = data.unwrap_or_else(|| panic!("acknowledged order {id} missing from redis"));
        let v: Value = serde_json::from_str(&data).unwrap();
        if *status == "paid" {
            assert_eq!(v["order"]["status"], "paid", "{id}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let pos: Option<String> = hget(&mut conn, format!("{prefix}positions"), &r.id).await;
        let lat: Option<f64> = pos
            .as_deref()
            .and_then(|p| p.split(',').next()?.parse().ok());
        if lat.is_some_and(|lat| (lat - last.0).abs() < 1e-9) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "latest position not flushed: {pos:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // …and GEOADD makes it visible to ordinary Redis tools.
    let near: Vec<String> = redis::cmd("GEOSEARCH")
        .arg(format!("{prefix}geo"))
        .arg("FROMLONLAT")
        .arg(last.1)
        .arg(last.0)
        .arg("BYRADIUS")
        .arg(100)
        .arg("m")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(near, vec![r.id.clone()]);
    // Ready and writable again.
    api.post("/orders", Some(&c.token), &api.order_body(&m, 2))
        .await
        .expect(201);
    s.kill9();
}

/// One load worker: creates and pays orders until told to stop.
struct Load {
    api: Api,
    order: Value,
    token: String,
    stop: Arc<AtomicBool>,
}

impl Load {
    /// Returns the acknowledged orders (id, status acknowledged) and how many calls were
    /// refused with 503. A request that does not get through at all is tried again.
    async fn run(self) -> (Vec<(String, &'static str)>, u32) {
        let (c, base) = (&self.api.client, &self.api.base);
        let mut acked: Vec<(String, &'static str)> = Vec::new();
        let mut refused = 0u32;
        while !self.stop.load(Ordering::SeqCst) {
            let r = c
                .post(format!("{base}/api/v1/orders"))
                .bearer_auth(&self.token)
                .json(&self.order)
                .send()
                .await;
            let Ok(r) = r else { continue };
            match r.status().as_u16() {
                201 => {
                    let o: Value = r.json().await.unwrap();
                    let id = o["order_id"].as_str().unwrap().to_string();
                    let p = c
                        .post(format!("{base}/api/v1/orders/{id}/pay"))
                        .bearer_auth(&self.token)
                        .json(&serde_json::json!({"payment_ref": "p"}))
                        .send()
                        .await;
                    match p.map(|p| p.status().as_u16()) {
                        Ok(200) => acked.push((id, "paid")),
                        Ok(503) => {
                            refused += 1;
                            acked.push((id, "pending_payment"))
                        }
                        other => panic!("pay answered {other:?}"),
                    }
                }
                503 => refused += 1,
                other => panic!("create answered {other}"),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (acked, refused)
    }
}
