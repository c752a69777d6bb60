//! Every node's dashboard shows the escalations of every node, and a dispatcher resolves
//! one through any node (docs/cluster.md, "The whole city on every socket"): a merchant
//! on A's zone does not accept a paid order; the escalation A raises reaches a dashboard
//! on B (its `updates`, then a snapshot), is resolved through B's REST, and both
//! dashboards see it resolved.

use crate::city_pair::CityPair;
use crate::harness::*;
use crate::support::*;
use serde_json::{json, Value};

/// Reads `dash` until an `updates` frame lists the escalation of `kind` about `order`
/// matching `want`; returns it.
async fn on_board(
    dash: &mut WsClient,
    order: &str,
    what: &str,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let has = |e: &Value| e["order_id"] == order && e["kind"] == "merchant_unresponsive" && want(e);
    let frame = dash
        .recv_until(&format!("escalation of {order} {what}"), WAIT, |v| {
            v["type"] == "updates"
                && v["escalations"]
                    .as_array()
                    .is_some_and(|es| es.iter().any(has))
        })
        .await;
    frame["escalations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| has(e))
        .unwrap()
        .clone()
}

fn open(e: &Value) -> bool {
    e["resolved_ms"].is_null()
}

fn listed<'a>(snapshot: &'a Value, id: &Value) -> Vec<&'a Value> {
    snapshot["escalations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| &e["escalation_id"] == id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_raised_on_one_node_is_shown_and_resolved_through_another() {
    let (prefix, _cleanup) = fresh_keys();
    // The merchant is escalated after 4 s; at 8 s the order would be cancelled and the
    // escalation cleared by the system: the dispatcher acts between the two.
    let short = [("DISPATCH_TIMERS__MERCHANT_ACCEPT_S", "4")];
    let nodes = CityPair::start(MAIN_REDIS, &prefix, &short, &short).await;
    let (on_a, on_b) = (nodes.a.api(), nodes.b.api());
    // The shop's zone is A's (rendezvous hashing gives it node-a of the two).
    let m = nodes.merchant_on_a().await;
    let (mut dash_a, _) = on_a.dashboard().await;
    let (mut dash_b, _) = on_b.dashboard().await;

    // A paid order the merchant leaves alone: A's order actor raises the escalation.
    let c = on_a.customer().await;
    let order = on_a.placed_order(&c, &m).await;
    on_a.pay(&c, &order).await;
    let seen_b = on_board(&mut dash_b, &order, "open", open).await;
    let seen_a = on_board(&mut dash_a, &order, "open", open).await;
    // The very escalation object A's own dashboard gets.
    assert_eq!(seen_a, seen_b);
    let id = seen_b["escalation_id"].clone();

    // A dashboard opening on B lists it, once; so does B's REST list.
    let (_, snap) = on_b.dashboard().await;
    assert_eq!(listed(&snap, &id).len(), 1, "B's snapshot: {snap}");
    let (mut late_b, _) = on_b.dashboard().await;
    assert!(on_b
        .open_escalation(&order, "merchant_unresponsive")
        .await
        .is_some());
    // A's snapshot lists its own escalation once (never a copy of itself from B).
    let (_, snap) = on_a.dashboard().await;
    assert_eq!(listed(&snap, &id).len(), 1, "A's snapshot: {snap}");

    // The dispatcher resolves it through B: B forwards to A's desk.
    let id_s = id.as_str().unwrap();
    let r = on_b
        .post(
            &format!("/escalations/{id_s}/resolve"),
            Some(&on_b.dispatcher),
            &json!({"note": "called the shop"}),
        )
        .await
        .expect(200);
    assert_eq!(r["escalation_id"], id);
    assert_eq!(r["resolved_by"], "dispatcher");
    assert_eq!(r["note"], "called the shop");
    let resolved = |e: &Value| e["resolved_by"] == "dispatcher";
    let done_b = on_board(&mut dash_b, &order, "resolved", resolved).await;
    let done_a = on_board(&mut dash_a, &order, "resolved", resolved).await;
    on_board(&mut late_b, &order, "resolved", resolved).await;
    assert_eq!(done_a, done_b);
    assert_eq!(done_a, r);
    // A resolved it on its desk: its own list says so.
    assert!(on_a
        .open_escalation(&order, "merchant_unresponsive")
        .await
        .is_none());
    assert!(on_a.resolved_escalation(&id).await.is_some());
    // Open ones only: neither snapshot lists it now.
    for api in [&on_a, &on_b] {
        let (_, snap) = api.dashboard().await;
        assert!(
            listed(&snap, &id).is_empty(),
            "resolved in a snapshot: {snap}"
        );
    }

    // An escalation no node holds is unknown through any node.
    on_b.post(
        "/escalations/e_nobody/resolve",
        Some(&on_b.dispatcher),
        &json!({}),
    )
    .await
    .expect(404);
    drop(nodes);
}
