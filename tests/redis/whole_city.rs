//! Every node's dashboard shows the whole city (docs/cluster.md): an order living on one
//! node appears, change by change, on a dashboard connected to another, in the frames
//! the dashboard of its own node gets, and in that dashboard's snapshot while it lives.

use crate::city_pair::CityPair;
use crate::harness::*;
use crate::lag::sample;
use crate::support::*;
use serde_json::Value;

/// Reads `dash` until an `updates` frame lists `order` with `status`; returns the order.
pub(crate) async fn on_board(dash: &mut WsClient, order: &str, status: &str) -> Value {
    let has = |o: &Value| o["order_id"] == order && o["status"] == status;
    let frame = dash
        .recv_until(&format!("order {order} {status}"), WAIT, |v| {
            v["type"] == "updates" && v["orders"].as_array().is_some_and(|os| os.iter().any(has))
        })
        .await;
    frame["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| has(o))
        .unwrap()
        .clone()
}

/// Reads `dash` until an `updates` frame lists `order` at `version`; returns the order.
async fn at_version(dash: &mut WsClient, order: &str, version: &Value) -> Value {
    let has = |o: &Value| o["order_id"] == order && &o["version"] == version;
    let frame = dash
        .recv_until(&format!("order {order} version {version}"), WAIT, |v| {
            v["type"] == "updates" && v["orders"].as_array().is_some_and(|os| os.iter().any(has))
        })
        .await;
    frame["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| has(o))
        .unwrap()
        .clone()
}

fn lists(snapshot: &Value, order: &str) -> bool {
    snapshot["orders"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["order_id"] == order)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_on_one_node_shows_the_orders_of_another() {
    dashboard_on_b_follows_an_order_of_a(MAIN_REDIS).await;
}

/// The same on a Redis Cluster of three masters: each zone's stream is read on its slot's
/// master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_on_one_node_shows_the_orders_of_another_on_a_redis_cluster() {
    let cluster = crate::test_cluster::TestCluster::start();
    dashboard_on_b_follows_an_order_of_a(&cluster.url).await;
}

async fn dashboard_on_b_follows_an_order_of_a(url: &str) {
    let (prefix, _cleanup) = fresh_keys();
    let nodes = CityPair::start(url, &prefix, &[], &[]).await;
    let (on_a, on_b) = (nodes.a.api(), nodes.b.api());

    // The shop's zone is A's (rendezvous hashing gives it node-a of the two).
    let m = nodes.merchant_on_a().await;
    let (mut dash_a, _) = on_a.dashboard().await;
    let (mut dash_b, _) = on_b.dashboard().await;

    // Every change of the order, made on A, reaches the dashboard on B.
    let c = on_a.customer().await;
    let order = on_a.placed_order(&c, &m).await;
    on_board(&mut dash_b, &order, "pending_payment").await;
    on_a.pay(&c, &order).await;
    let seen_b = on_board(&mut dash_b, &order, "paid").await;
    // The very order object A's own dashboard gets.
    let seen_a = at_version(&mut dash_a, &order, &seen_b["version"]).await;
    assert_eq!(seen_a, seen_b);
    on_a.accept(&m, &order).await;
    on_board(&mut dash_b, &order, "accepted").await;

    // A dashboard opening on B now finds it in its snapshot.
    let (mut late, snap) = on_b.dashboard().await;
    assert!(lists(&snap, &order), "not in B's snapshot: {snap}");

    // A rider on A takes it to the door; B's dashboards follow to the end.
    let mut r = new_rider_online(&on_a, offset(SHOP, 100.0, 0.0)).await;
    r.take_order(&order).await;
    on_board(&mut dash_b, &order, "assigned").await;
    r.report("picked_up", &order).await;
    on_board(&mut dash_b, &order, "picked_up").await;
    r.report("delivered", &order).await;
    on_board(&mut dash_b, &order, "delivered").await;
    on_board(&mut late, &order, "delivered").await;

    // Ended, it leaves B's snapshot as it leaves A's.
    let (_, snap) = on_b.dashboard().await;
    assert!(!lists(&snap, &order), "a delivered order in B's snapshot");
    // B's live counters count A's offer accepted, as A's own do.
    let (_, snap_a) = on_a.dashboard().await;
    assert_eq!(snap_a["stats"]["offers_accepted"], 1, "{}", snap_a["stats"]);
    assert_eq!(snap["stats"], snap_a["stats"]);
    // The first changes may reach B as it takes the zone up (from the order's record,
    // the zone list being read every 2 s); once B showed `accepted` it had, so the
    // rider's three changes came through the feed.
    let fed = sample(&nodes.b, r#"dispatch_city_feed_total{outcome="fed"}"#).await;
    assert!(fed >= 3.0, "B fed {fed} entries");
    // A holds the zone: what it wrote is its own, never fed back to itself.
    let fed_on_a = sample(&nodes.a, r#"dispatch_city_feed_total{outcome="fed"}"#).await;
    assert_eq!(fed_on_a, 0.0);
    drop(nodes);
}
