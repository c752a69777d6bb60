//! Beyond the happy path: cancelled offers, a rider's release, silent and lost riders.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

/// The rider is told `unassigned` with `reason`, and the order waits for a rider again.
async fn taken_back(app: &TestApp, rider: &mut Rider, id: &str, reason: &str) {
    let un = rider.ws.recv_type("unassigned", T).await;
    assert_eq!(
        (un["order_id"].as_str(), un["reason"].as_str()),
        (Some(id), Some(reason))
    );
    let o = app.order_state(id).await;
    assert_eq!(
        (o["status"].as_str(), &o["rider_id"]),
        (Some("accepted"), &Value::Null)
    );
}

#[actix_web::test]
async fn cancelling_closes_open_offers_and_a_release_counts_as_a_decline() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let mut a = app.rider_at(offset(SHOP, 100.0, 0.0)).await;

    // An open offer closes `cancelled` when the dispatcher cancels the order.
    let id = app.accepted_order(&c, &m).await;
    let offer = a.expect_offer().await;
    app.order_call(&id, "cancel", &app.dispatcher, json!({"reason": "test"}))
        .await
        .expect(200);
    let closed = a.ws.recv_type("offer_closed", T).await;
    assert_eq!(
        (closed["offer_id"].clone(), closed["reason"].as_str()),
        (offer["offer_id"].clone(), Some("cancelled"))
    );

    // A takes the next order, then hands it back: `unassigned released`, and it goes to B.
    let mut b = app.rider_at(offset(SHOP, 0.0, 600.0)).await;
    let id2 = app.accepted_order(&c, &m).await;
    a.take_order(&id2).await;
    a.report("release", &id2).await;
    taken_back(&app, &mut a, &id2, "released").await;
    let to_b = b.expect_offer().await;
    assert_eq!(to_b["order_id"], id2.as_str());
    b.send(json!({"type": "decline", "offer_id": to_b["offer_id"]}))
        .await;
    // Both passed: A is never offered it again.
    a.ws.expect_none(
        "the released order offered again",
        Duration::from_millis(2500),
        |v| v["type"] == "offer" && v["order_id"] == id2.as_str(),
    )
    .await;

    // While an order is assigned, a dispatcher cancel tells the rider.
    let id3 = app.accepted_order(&c, &m).await;
    a.take_order(&id3).await;
    app.order_call(&id3, "cancel", &app.dispatcher, json!({}))
        .await
        .expect(200);
    let cancelled = a.ws.recv_type("order_cancelled", T).await;
    assert_eq!(cancelled["order_id"], id3.as_str());
}

#[actix_web::test]
async fn a_silent_rider_goes_stale_then_loses_the_order() {
    let (app, c, m) = spawn_shop(|s| {
        s.timers.rider_silent_s = 1.5;
        s.timers.rider_lost_s = 3.0;
    })
    .await;
    let mut a = app.rider_at(offset(SHOP, 100.0, 0.0)).await;
    let id = app.accepted_order(&c, &m).await;
    let offer = a.expect_offer().await;
    a.accept(&offer).await;

    // No more fixes: stale, off the nearby list, one rider_silent escalation.
    let e = wait_for("a rider_silent escalation", T, || async {
        app.escalations("?open=true")
            .await
            .into_iter()
            .find(|e| e["kind"] == "rider_silent")
    })
    .await;
    assert_eq!(e["rider_id"], a.id.as_str());
    assert_eq!(e["order_id"], id.as_str());
    assert!(
        app.nearby_rider(&a.id).await.is_none(),
        "a stale rider is not listed"
    );

    // Lost: the order is taken back and dispatched again.
    taken_back(&app, &mut a, &id, "rider_lost").await;
    // B keeps reporting (rider_silent_s is short) until the order reaches it.
    let mut b = app.rider_at(offset(SHOP, 0.0, 300.0)).await;
    let mut offer_b = None;
    for i in 0..12 {
        b.move_to(offset(SHOP, 0.0, 300.0 - i as f64)).await;
        let deadline = std::time::Instant::now() + Duration::from_millis(700);
        while let Some(v) =
            b.ws.next_json(deadline.saturating_duration_since(std::time::Instant::now()))
                .await
        {
            if v["type"] == "offer" {
                offer_b = Some(v);
                break;
            }
        }
        if offer_b.is_some() {
            break;
        }
    }
    let offer_b = offer_b.unwrap_or_else(|| panic!("no offer for B: {:#?}", b.ws.seen));
    assert_eq!(offer_b["order_id"], id.as_str());

    // A is heard again: the escalation resolves itself.
    a.move_to(offset(SHOP, 90.0, 0.0)).await;
    let resolved = wait_for("rider_silent to resolve", T, || {
        app.resolved_escalation(&e["escalation_id"])
    })
    .await;
    assert_eq!(resolved["resolved_by"], "system");
}
