//! An order's notices on any node (docs/cluster.md, "The whole city on every socket"):
//! a tracking page and a merchant app connected to a node that does not hold the order's
//! zone get the rider's positions and "rider arriving" as on the order's own node.

use crate::city_pair::CityPair;
use crate::harness::*;
use crate::support::*;
use crate::whole_city::on_board;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracking_page_and_a_merchant_app_on_another_node_see_the_rider_move() {
    let (prefix, _cleanup) = fresh_keys();
    let nodes = CityPair::start(MAIN_REDIS, &prefix, &[], &[]).await;
    let (on_a, on_b) = (nodes.a.api(), nodes.b.api());

    // The shop's zone, so the order's actor, is A's; the sockets are on B.
    let m = nodes.merchant_on_a().await;
    let c = on_a.customer().await;
    let order = on_a.placed_order(&c, &m).await;
    let (mut dash_b, _) = on_b.dashboard().await;
    on_board(&mut dash_b, &order, "pending_payment").await;
    let (mut shop_b, _) = on_b.merchant_app(&m).await;
    let (mut track_b, _) = on_b.track(&order, &c.token).await;
    let (mut track_a, _) = on_a.track(&order, &c.token).await;
    on_a.pay(&c, &order).await;
    on_a.accept(&m, &order).await;

    // A rider on A takes it and rides towards the shop.
    let mut r = new_rider_online(&on_a, offset(SHOP, 100.0, 0.0)).await;
    r.take_order(&order).await;
    let p = offset(SHOP, 60.0, 0.0);
    r.move_to(p).await;
    let loc = track_b.recv_type("rider_location", WAIT).await;
    assert!((loc["lat"].as_f64().unwrap() - p.0).abs() < 1e-9, "{loc}");
    assert!(loc["eta_s"].as_f64().is_some_and(|e| e > 0.0), "{loc}");
    let arriving = shop_b.recv_type("rider_arriving", WAIT).await;
    assert_eq!(arriving["order_id"], order.as_str());

    // The page on the order's own node gets it once (nobody sends it back there), with
    // the same fields.
    let loc_a = track_a.recv_type("rider_location", WAIT).await;
    assert_eq!(loc_a, loc);
    track_a
        .expect_no_type("rider_location", std::time::Duration::from_millis(1200))
        .await;

    // The next position follows.
    let q = offset(SHOP, 30.0, 0.0);
    r.move_to(q).await;
    let loc = track_b
        .recv_until("the next position", WAIT, |v| {
            v["type"] == "rider_location" && (v["lat"].as_f64().unwrap() - q.0).abs() < 1e-9
        })
        .await;
    assert!(loc["ts_ms"].as_u64().is_some());
    drop(nodes);
}
