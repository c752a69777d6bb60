//! Scenario 8: rider reconnects; `welcome` restores what the rider holds, and a second
//! connection replaces the first.

use crate::helpers::*;
use serde_json::{json, Value};

/// A new connection with the rider's token; its first frame is `welcome`.
async fn reconnect(app: &TestApp, token: &str) -> (WsClient, Value) {
    let mut ws = app.ws(&format!("/ws/rider?token={token}")).await.unwrap();
    let w = ws.next_json(T).await.expect("welcome");
    assert_eq!(w["type"], "welcome", "first frame {w}");
    (ws, w)
}

#[actix_web::test]
async fn a_reconnecting_rider_gets_its_order_and_its_open_offer_back() {
    let (app, c, m) = spawn_shop(|_| {}).await;

    // A holds an order.
    let mut a = app.rider_at(offset(SHOP, 100.0, 0.0)).await;
    let id1 = app.accepted_order(&c, &m).await;
    a.take_order(&id1).await;

    // B holds an open offer (A is busy, so B is next).
    let mut b = app.rider_at(offset(SHOP, 0.0, 400.0)).await;
    let id2 = app.accepted_order(&c, &m).await;
    let offer_b = b.expect_offer().await;
    assert_eq!(offer_b["order_id"], id2.as_str());

    // Both drop their connections.
    a.ws.close().await;
    b.ws.close().await;
    a.ws.wait_closed(T).await;
    b.ws.wait_closed(T).await;

    // A comes back: busy, holding the order.
    let (mut a2, w) = reconnect(&app, &a.token).await;
    assert_eq!(w["rider_id"], a.id.as_str());
    assert_eq!(w["status"], "busy");
    assert!(w["location_interval_s"].as_f64().is_some());
    let orders = w["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{w}");
    assert_eq!(orders[0]["order_id"], id1.as_str());
    assert_eq!(orders[0]["status"], "assigned");
    assert_eq!(w["offer"], Value::Null);
    // …and can carry on.
    a2.send_json(json!({"type": "picked_up", "order_id": id1}))
        .await;
    assert_eq!(
        a2.recv_type("order_updated", T).await["order"]["status"],
        "picked_up"
    );
    a2.send_json(json!({"type": "failed", "order_id": id1, "reason": "customer not home"}))
        .await;
    assert_eq!(
        a2.recv_type("order_updated", T).await["order"]["status"],
        "failed"
    );
    assert_eq!(app.order_state(&id1).await["status"], "failed");

    // B comes back: offered, the same offer; accepting it still works.
    let (mut b2, w) = reconnect(&app, &b.token).await;
    assert_eq!(w["status"], "offered");
    assert_eq!(w["orders"].as_array().unwrap().len(), 0);
    assert_eq!(w["offer"]["offer_id"], offer_b["offer_id"]);
    assert_eq!(w["offer"]["order_id"], id2.as_str());
    assert_eq!(w["offer"]["expires_at_ms"], offer_b["expires_at_ms"]);
    b2.send_json(json!({"type": "accept", "offer_id": offer_b["offer_id"]}))
        .await;
    let assigned = b2.recv_type("assigned", T).await;
    assert_eq!(assigned["order"]["order_id"], id2.as_str());
    assert_eq!(app.order_state(&id2).await["rider_id"], b.id.as_str());
}

#[actix_web::test]
async fn a_second_connection_replaces_the_first() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let mut first = app.rider_at(offset(SHOP, 100.0, 0.0)).await;

    let mut second = app
        .ws(&format!("/ws/rider?token={}", first.token))
        .await
        .unwrap();
    let w = second.recv_type("welcome", T).await;
    assert_eq!(w["status"], "idle");
    // The first connection is closed by the server.
    first.ws.wait_closed(T).await;

    // Everything now goes to the second connection.
    let id = app.accepted_order(&c, &m).await;
    let offer = second.recv_type("offer", T).await;
    assert_eq!(offer["order_id"], id.as_str());
    second
        .send_json(json!({"type": "accept", "offer_id": offer["offer_id"]}))
        .await;
    second.recv_type("assigned", T).await;
    // Fixes on the second connection count.
    let p = offset(SHOP, 50.0, 0.0);
    let ts = first.ts_for(p);
    second
        .send_json(json!({"type": "location", "lat": p.0, "lon": p.1, "ts_ms": ts}))
        .await;
    wait_for("the fix from the second connection", T, || async {
        let v = app.nearby_rider(&first.id).await?;
        ((v["location"]["lat"].as_f64()? - p.0).abs() < 1e-9).then_some(())
    })
    .await;
}
