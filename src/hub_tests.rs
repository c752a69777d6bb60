//! The hub's part in the whole city on every dashboard: orders of other nodes reach
//! dashboards exactly as this node's own do.

use super::*;
use crate::elsewhere::tests::order;

fn dashboard(hub: &Hub) -> TextOutbox {
    let o = TextOutbox::new(16);
    hub.add_dashboard(o.clone());
    o
}

/// The frames a dashboard got from one tick.
fn tick(hub: &Hub, o: &TextOutbox) -> Vec<serde_json::Value> {
    hub.flush_dashboards();
    o.drain()
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect()
}

fn statuses(frame: &serde_json::Value) -> Vec<(String, String)> {
    frame["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["order_id"].as_str().unwrap().to_string(),
                o["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn an_order_elsewhere_reaches_dashboards_in_the_frame_a_local_one_gets() {
    let (local, remote) = (Hub::new(), Hub::new());
    let (a, b) = (dashboard(&local), dashboard(&remote));
    let o = order("o_1", 2, OrderStatus::Paid);
    local.route(Event::OrderChanged {
        order: o.clone(),
        previous_status: Some(OrderStatus::PendingPayment),
    });
    remote.order_elsewhere(o);
    let (a, b) = (tick(&local, &a), tick(&remote, &b));
    assert_eq!(a, b);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["type"], "updates");
    assert_eq!(statuses(&b[0]), [("o_1".to_string(), "paid".to_string())]);
}

#[test]
fn a_stale_copy_is_not_sent_and_a_final_one_is_sent_and_forgotten() {
    let hub = Hub::new();
    let d = dashboard(&hub);
    hub.order_elsewhere(order("o_1", 3, OrderStatus::Accepted));
    assert_eq!(tick(&hub, &d).len(), 1);
    hub.order_elsewhere(order("o_1", 2, OrderStatus::Paid));
    assert!(tick(&hub, &d).is_empty(), "an older copy went out");
    assert_eq!(hub.sizes().orders_elsewhere, 1);
    assert_eq!(hub.orders_elsewhere()[0].status, OrderStatus::Accepted);

    hub.order_elsewhere(order("o_1", 4, OrderStatus::Cancelled));
    let frames = tick(&hub, &d);
    assert_eq!(
        statuses(&frames[0]),
        [("o_1".to_string(), "cancelled".to_string())]
    );
    assert_eq!(hub.sizes().orders_elsewhere, 0);
    assert!(hub.orders_elsewhere().is_empty());
}

#[test]
fn an_order_whose_actor_is_here_now_is_no_longer_elsewhere() {
    let hub = Hub::new();
    hub.order_elsewhere(order("o_1", 3, OrderStatus::Accepted));
    hub.order_elsewhere(order("o_2", 1, OrderStatus::Paid));
    // The zone of o_1 moved to this node; its rebuilt actor writes it.
    hub.route(Event::OrderChanged {
        order: order("o_1", 4, OrderStatus::Accepted),
        previous_status: Some(OrderStatus::Accepted),
    });
    let left: Vec<_> = hub
        .orders_elsewhere()
        .iter()
        .map(|o| o.order_id.to_string())
        .collect();
    assert_eq!(left, ["o_2"]);
}
