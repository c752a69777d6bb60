//! Scenario 9: escalations over REST: an unresponsive merchant.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

#[actix_web::test]
async fn an_unresponsive_merchant_is_escalated_resolved_by_hand_and_the_order_cancelled() {
    let (app, c, m) = spawn_shop(|s| s.timers.merchant_accept_s = 1.0).await;
    let (mut merchant_ws, _) = app.merchant_app(&m).await;
    let id = app.placed_order(&c, &m).await;
    let (mut track, _) = app.track(&id, &c.token).await;
    assert!(app.escalations("?open=true").await.is_empty());
    app.pay(&c, &id).await;

    // After merchant_accept_s: a reminder and an open escalation.
    let reminder = merchant_ws.recv_type("reminder", T).await;
    assert_eq!(reminder["order_id"], id.as_str());
    assert!(reminder["message"].is_string());
    let e = wait_for("merchant_unresponsive", T, || {
        app.open_escalation(&id, "merchant_unresponsive")
    })
    .await;
    let eid = e["escalation_id"].as_str().unwrap().to_string();
    assert!(eid.starts_with("e_"));
    assert_eq!(e["level"], 1);
    assert_eq!(e["resolved_ms"], Value::Null);
    assert_eq!(e["resolved_by"], Value::Null);
    assert!(e["opened_ms"].as_u64().is_some());
    assert!(e["message"].is_string());

    // The dispatcher resolves it.
    let r = app
        .post(
            &format!("/escalations/{eid}/resolve"),
            Some(&app.dispatcher),
            &json!({"note": "called them"}),
        )
        .await
        .expect(200);
    assert_eq!(r["escalation_id"], eid.as_str());
    assert_eq!(r["resolved_by"], "dispatcher");
    assert!(r["resolved_ms"].as_u64().is_some());
    assert!(app
        .open_escalation(&id, "merchant_unresponsive")
        .await
        .is_none());
    let all = app.escalations("").await;
    let same = all
        .iter()
        .find(|x| x["escalation_id"] == eid.as_str())
        .expect("listed without open");
    assert_eq!(same["resolved_by"], "dispatcher");

    // At 2 × merchant_accept_s the order is cancelled (refund).
    let st = track
        .recv_until("status cancelled", T, |v| {
            v["type"] == "status" && v["status"] == "cancelled"
        })
        .await;
    assert_eq!(st["order_id"], id.as_str());
    let o = app.order_state(&id).await;
    assert_eq!(o["status"], "cancelled");
    merchant_ws
        .recv_until("order_updated cancelled", T, |v| {
            v["type"] == "order_updated" && v["order"]["status"] == "cancelled"
        })
        .await;
    // The merchant is too late now.
    app.order_call(&id, "accept", &m.token, json!({}))
        .await
        .expect_error(409, "invalid_transition");

    // Unknown escalations are 404.
    app.post(
        "/escalations/e_nothere/resolve",
        Some(&app.dispatcher),
        &json!({}),
    )
    .await
    .expect_error(404, "not_found");
}

#[actix_web::test]
async fn an_escalation_resolves_itself_when_the_merchant_accepts_and_cancels_otherwise() {
    let (app, c, m) = spawn_shop(|s| s.timers.merchant_accept_s = 1.0).await;
    let slow = app.placed_order(&c, &m).await;
    let ignored = app.placed_order(&c, &m).await;
    app.pay(&c, &slow).await;
    app.pay(&c, &ignored).await;
    let e = wait_for("merchant_unresponsive", T, || {
        app.open_escalation(&slow, "merchant_unresponsive")
    })
    .await;
    wait_for("the second escalation", T, || {
        app.open_escalation(&ignored, "merchant_unresponsive")
    })
    .await;

    // Accepting late clears it (system).
    app.accept(&m, &slow).await;
    let resolved = wait_for("the escalation to resolve", T, || {
        app.resolved_escalation(&e["escalation_id"])
    })
    .await;
    assert_eq!(resolved["resolved_by"], "system");

    // The ignored one is cancelled at 2× and its escalation resolves (system).
    wait_for("the ignored order to be cancelled", T, || async {
        (app.order_state(&ignored).await["status"] == "cancelled").then_some(())
    })
    .await;
    let closed = wait_for("the ignored order's escalation to resolve", T, || async {
        app.escalations("")
            .await
            .into_iter()
            .find(|x| x["order_id"] == ignored.as_str() && !x["resolved_ms"].is_null())
    })
    .await;
    assert_eq!(closed["resolved_by"], "system");
    assert_eq!(app.order_state(&slow).await["status"], "accepted");
    // Newest first.
    let all = app.escalations("").await;
    let opened: Vec<u64> = all
        .iter()
        .map(|x| x["opened_ms"].as_u64().unwrap())
        .collect();
    assert!(
        opened.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {opened:?}"
    );
}

#[actix_web::test]
async fn no_rider_raises_its_level_each_period_and_resolves_on_assignment() {
    let (app, c, m) = spawn_shop(|s| s.timers.dispatch_remind_s = 1.0).await;
    let id = app.accepted_order(&c, &m).await;

    let first = wait_for("no_rider", T, || app.open_escalation(&id, "no_rider")).await;
    assert_eq!(first["level"], 1);
    let raised = wait_for("no_rider level 2", T, || async {
        app.open_escalation(&id, "no_rider")
            .await
            .filter(|e| e["level"].as_u64() >= Some(2))
    })
    .await;
    assert_eq!(
        raised["escalation_id"], first["escalation_id"],
        "a repeat raises the level"
    );
    let count = app
        .escalations("")
        .await
        .iter()
        .filter(|e| e["kind"] == "no_rider")
        .count();
    assert_eq!(count, 1);

    // Riders turn up: one beyond max_radius_m (20 km) is never offered the order, one far
    // out but in range is; assignment resolves the escalation.
    let mut too_far = app.rider_at(offset(SHOP, 25_000.0, 0.0)).await;
    let mut r = app.rider_at(offset(SHOP, 9000.0, 0.0)).await;
    r.take_order(&id).await;
    let resolved = wait_for("no_rider to resolve", T, || {
        app.resolved_escalation(&first["escalation_id"])
    })
    .await;
    assert_eq!(resolved["resolved_by"], "system");
    assert!(app.open_escalation(&id, "no_rider").await.is_none());
    too_far
        .ws
        .expect_none(
            "an offer beyond max_radius_m",
            Duration::from_millis(100),
            |v| v["type"] == "offer",
        )
        .await;
}
