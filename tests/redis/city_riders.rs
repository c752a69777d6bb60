//! Every node's dashboard shows the riders of every node (docs/cluster.md, "The whole
//! city on every socket"): a rider whose socket is on node A appears on a dashboard on
//! node B as it goes online and moves, in the rider object A's own dashboard gets, and in
//! the snapshot of a dashboard opening on B.

use crate::city_pair::CityPair;
use crate::harness::*;
use crate::support::*;
use serde_json::Value;

fn at(rider: &Value, to: (f64, f64)) -> bool {
    let close = |v: &Value, x: f64| v.as_f64().is_some_and(|v| (v - x).abs() < 1e-7);
    close(&rider["location"]["lat"], to.0) && close(&rider["location"]["lon"], to.1)
}

/// Reads `dash` until an `updates` frame lists `rider` `status` at `to`; returns it.
async fn on_board(dash: &mut WsClient, rider: &str, status: &str, to: (f64, f64)) -> Value {
    let has = |r: &Value| r["rider_id"] == rider && r["status"] == status && at(r, to);
    let frame = dash
        .recv_until(&format!("rider {rider} {status} at {to:?}"), WAIT, |v| {
            v["type"] == "updates" && v["riders"].as_array().is_some_and(|rs| rs.iter().any(has))
        })
        .await;
    frame["riders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| has(r))
        .unwrap()
        .clone()
}

fn listed<'a>(snapshot: &'a Value, rider: &str) -> Vec<&'a Value> {
    snapshot["riders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["rider_id"] == rider)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_on_one_node_shows_the_riders_of_another() {
    let (prefix, _cleanup) = fresh_keys();
    let nodes = CityPair::start(MAIN_REDIS, &prefix, &[], &[]).await;
    let (on_a, on_b) = (nodes.a.api(), nodes.b.api());
    let (mut dash_a, _) = on_a.dashboard().await;
    let (mut dash_b, _) = on_b.dashboard().await;

    // The rider's socket, hence its actor, is on A.
    let mut r = on_a.rider_connected().await;
    r.online().await;
    let first = offset(SHOP, 100.0, 0.0);
    r.move_to(first).await;
    on_board(&mut dash_b, &r.id, "idle", first).await;

    // It moves: B follows, with the very rider object A's own dashboard gets.
    let then = offset(SHOP, 400.0, 250.0);
    r.move_to(then).await;
    let seen_b = on_board(&mut dash_b, &r.id, "idle", then).await;
    let seen_a = on_board(&mut dash_a, &r.id, "idle", then).await;
    assert_eq!(seen_a, seen_b);

    // A dashboard opening on B lists it, once, where it is now.
    let (_, snap) = on_b.dashboard().await;
    let found = listed(&snap, &r.id);
    assert_eq!(found.len(), 1, "B's snapshot: {snap}");
    assert_eq!(found[0], &seen_b);
    // A's snapshot lists its own rider once (never a copy of itself from B).
    let (_, snap) = on_a.dashboard().await;
    assert_eq!(listed(&snap, &r.id).len(), 1, "A's snapshot: {snap}");
    drop(nodes);
}
