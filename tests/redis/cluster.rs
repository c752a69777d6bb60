//! `dispatchd` on a Redis Cluster (three masters of the test's own, from
//! tools/redis-cluster.sh): `store.redis_url` is the seed list; orders and riders survive
//! `kill -9` and a restart exactly as on a plain Redis.

use crate::harness::*;
use crate::support::*;
use crate::test_cluster::TestCluster;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_orders_and_riders_survive_kill_9() {
    let cluster = TestCluster::start();
    let prefix = unique_prefix();
    let s = Server::start_ready(&cluster.url, &prefix, &[]).await;
    let api = s.api();
    let (m, c) = (api.merchant().await, api.customer().await);
    let mut r = api.rider_at(offset(SHOP, 200.0, 0.0)).await;
    // One order driven to delivered, a second held by the rider.
    let delivered = api.accepted_order(&c, &m).await;
    take_next(&mut r, &delivered).await;
    report(&mut r, "picked_up", &delivered).await;
    let done = report(&mut r, "delivered", &delivered).await;
    assert_eq!(done["order"]["status"], "delivered", "{done}");
    let held = api.accepted_order(&c, &m).await;
    take_next(&mut r, &held).await;
    let before = [
        api.order_state(&delivered).await,
        api.order_state(&held).await,
    ];
    assert_eq!(before[0]["status"], "delivered");
    assert_eq!(before[1]["status"], "assigned");
    // Background writes (offers, rider views) are batched: let the last ones land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rider_id, token) = (r.id.clone(), r.token.clone());
    s.kill9();

    let s = Server::start_ready(&cluster.url, &prefix, &[]).await;
    let api = s.api();
    for (id, old) in [&delivered, &held].iter().zip(&before) {
        let now = api
            .get(&format!("/orders/{id}"), Some(&c.token))
            .await
            .expect(200);
        for k in ["status", "version", "rider_id", "timeline"] {
            assert_eq!(now[k], old[k], "{k} of {id} after restart");
        }
    }
    // The rider comes back with its old token, holding the assigned order.
    let (_r, welcome) = api.rider_socket(&rider_id, &token).await;
    assert_eq!(welcome["status"], "busy", "{welcome}");
    assert_eq!(welcome["orders"][0]["order_id"], held.as_str(), "{welcome}");
    // The engine's keys are spread over the masters (the zone-less orders under `{city}`).
    let store = open_store(&cluster.url, &prefix);
    assert!(store.is_cluster());
    assert!(store.delete_all().await.unwrap() > 0);
}
