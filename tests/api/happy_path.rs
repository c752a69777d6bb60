//! Scenario 1: from registration to delivery, with the merchant app, the rider app and
//! the customer's tracking page all watching.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

#[actix_web::test]
async fn order_from_registration_to_delivery_with_the_customer_watching() {
    let app = spawn_app(|_| {}).await;

    // Customer: register, then log in again (the login token is the one used below).
    let reg = app.customer().await;
    let login = app.login(&reg.username, "correct horse").await.expect(200);
    assert_eq!(login["customer_id"], reg.id.as_str());
    let bad = app.login(&reg.username, "wrong password").await;
    bad.expect_error(401, "unauthorized");
    let customer = Customer {
        id: reg.id.clone(),
        token: login["token"].as_str().unwrap().to_string(),
        username: reg.username.clone(),
    };

    // Merchant with two items; its app is connected.
    let m = app.merchant().await;
    let item2 = app
        .post(
            &format!("/merchants/{}/items", m.id),
            Some(&m.token),
            &json!({"name": "tea", "price_cents": 300}),
        )
        .await
        .expect(201);
    let item2_id = item2["item_id"].as_str().unwrap();
    let menu = app
        .get(&format!("/merchants/{}/items", m.id), None)
        .await
        .expect(200);
    assert_eq!(menu.as_array().unwrap().len(), 2);
    let (mut merchant_ws, welcome) = app.merchant_app(&m).await;
    assert_eq!(welcome["merchant_id"], m.id.as_str());

    // Two riders: one 200 m from the shop, one 2 km away.
    let mut near = app.rider_at(offset(SHOP, 200.0, 0.0)).await;
    let mut far = app.rider_at(offset(SHOP, -2000.0, 0.0)).await;

    // Order: 2 × 1250 + 3 × 300.
    let body = json!({"merchant_id": m.id,
        "items": [{"item_id": m.item_id, "qty": 2}, {"item_id": item2_id, "qty": 3}],
        "dropoff": {"lat": HOME.0, "lon": HOME.1}});
    let order = app
        .post("/orders", Some(&customer.token), &body)
        .await
        .expect(201);
    assert_eq!(order["status"], "pending_payment");
    assert_eq!(order["total_cents"], 2 * 1250 + 3 * 300);
    assert_eq!(order["customer_id"], customer.id.as_str());
    assert_eq!(order["merchant_id"], m.id.as_str());
    assert_eq!(order["rider_id"], Value::Null);
    assert_eq!(order["pickup"]["merchant_id"], m.id.as_str());
    assert_eq!(order["items"].as_array().unwrap().len(), 2);
    assert!(order["order_id"].as_str().unwrap().starts_with("o_"));
    assert_eq!(order["ready"], false);
    assert_eq!(
        order["ready_at_ms"],
        Value::Null,
        "no ready time before the merchant accepts"
    );
    assert_eq!(order["eta_s"], Value::Null);
    let mut versions = vec![order["version"].as_u64().unwrap()];
    let id = order["order_id"].as_str().unwrap().to_string();

    // The customer watches.
    let mut track = app
        .ws(&format!("/ws/orders/{id}/track?token={}", customer.token))
        .await
        .expect("tracking socket");
    let first = track.next_json(T).await.expect("a first frame");
    assert_eq!(first["type"], "snapshot", "first frame: {first}");
    assert_eq!(first["order"]["order_id"], id.as_str());
    assert_eq!(first["order"]["status"], "pending_payment");

    // Pay.
    let paid = app.pay(&customer, &id).await;
    versions.push(paid["version"].as_u64().unwrap());
    let new_order = merchant_ws.recv_type("new_order", T).await;
    assert_eq!(new_order["order"]["order_id"], id.as_str());
    assert_eq!(new_order["order"]["status"], "paid");
    let st = track.recv_type("status", T).await;
    assert_eq!(
        (st["order_id"].as_str(), st["status"].as_str()),
        (Some(id.as_str()), Some("paid"))
    );
    assert!(st["at_ms"].as_u64().is_some());

    // Merchant accepts; the nearest rider gets the offer.
    let accepted = app.accept(&m, &id).await;
    versions.push(accepted["version"].as_u64().unwrap());
    let ready_at = accepted["ready_at_ms"]
        .as_u64()
        .expect("ready_at_ms once accepted");
    assert!(
        ready_at.abs_diff(now_ms()) < 5_000,
        "prep time 0: ready at accept time"
    );
    let st = track.recv_type("status", T).await;
    assert_eq!(st["status"], "accepted");
    let offer = near.expect_offer().await;
    assert_eq!(offer["order_id"], id.as_str());
    assert!(offer["offer_id"].as_str().unwrap().starts_with("f_"));
    let d = offer["distance_m"].as_f64().expect("distance_m");
    assert!((180.0..=220.0).contains(&d), "distance_m {d}");
    let expires = offer["expires_at_ms"].as_u64().expect("expires_at_ms");
    assert!(expires > now_ms(), "offer already expired");
    assert_eq!(offer["pickup"]["merchant_id"], m.id.as_str());
    assert_eq!(offer["ready_at_ms"], accepted["ready_at_ms"]);
    assert!((offer["dropoff"]["lat"].as_f64().unwrap() - HOME.0).abs() < 1e-9);

    // Before assignment the customer sees no rider positions.
    near.move_to(offset(SHOP, 190.0, 0.0)).await;
    track
        .expect_no_type("rider_location", Duration::from_millis(300))
        .await;

    // The rider accepts.
    let assigned = near.accept(&offer).await;
    assert_eq!(assigned["order"]["order_id"], id.as_str());
    assert_eq!(assigned["order"]["status"], "assigned");
    assert_eq!(assigned["order"]["rider_id"], near.id.as_str());
    versions.push(assigned["order"]["version"].as_u64().unwrap());
    let st = track.recv_type("status", T).await;
    assert_eq!(st["status"], "assigned");
    let mut updated = merchant_ws
        .recv_until("order_updated (assigned)", T, |v| {
            v["type"] == "order_updated" && v["order"]["status"] == "assigned"
        })
        .await;
    assert_eq!(updated["order"]["rider_id"], near.id.as_str());

    // The rider moves: the customer sees it with an ETA.
    let p = offset(SHOP, 100.0, 0.0);
    near.move_to(p).await;
    let loc = track.recv_type("rider_location", T).await;
    assert!((loc["lat"].as_f64().unwrap() - p.0).abs() < 1e-9, "{loc}");
    assert!((loc["lon"].as_f64().unwrap() - p.1).abs() < 1e-9, "{loc}");
    assert!(loc["eta_s"].as_f64().is_some_and(|e| e > 0.0), "{loc}");
    assert!(loc["ts_ms"].as_u64().is_some());
    let eta_before_pickup = loc["eta_s"].as_f64().unwrap();
    // 100 m from the shop: the merchant hears the rider is arriving (once).
    let arriving = merchant_ws.recv_type("rider_arriving", T).await;
    assert_eq!(arriving["order_id"], id.as_str());
    assert!(
        arriving["eta_s"].as_f64().is_some_and(|e| e < 120.0),
        "{arriving}"
    );
    // While a rider holds the order, GET shows an ETA.
    let held = app
        .get(&format!("/orders/{id}"), Some(&customer.token))
        .await
        .expect(200);
    assert!(
        held["eta_s"].as_f64().is_some_and(|e| e > 0.0),
        "eta_s while assigned: {held}"
    );

    // The food is ready: the rider is told.
    let ready = app
        .post(&format!("/orders/{id}/ready"), Some(&m.token), &json!({}))
        .await
        .expect(200);
    assert_eq!(
        (ready["ready"].as_bool(), ready["status"].as_str()),
        (Some(true), Some("assigned"))
    );
    versions.push(ready["version"].as_u64().unwrap());
    let told = near.ws.recv_type("order_updated", T).await;
    assert_eq!(told["order"]["ready"], true);

    // Pickup.
    near.move_to(SHOP).await;
    near.report("picked_up", &id).await;
    let up = near.ws.recv_type("order_updated", T).await;
    assert_eq!(up["order"]["status"], "picked_up");
    assert_eq!(up["order"]["ready"], true);
    versions.push(up["order"]["version"].as_u64().unwrap());
    track
        .recv_until("status picked_up", T, |v| {
            v["type"] == "status" && v["status"] == "picked_up"
        })
        .await;
    updated = merchant_ws
        .recv_until("order_updated (picked_up)", T, |v| {
            v["type"] == "order_updated" && v["order"]["status"] == "picked_up"
        })
        .await;
    assert_eq!(updated["order"]["order_id"], id.as_str());

    // On the way: location with an ETA that shrinks as the rider nears the drop-off.
    let p = offset(SHOP, 300.0, 300.0);
    near.move_to(p).await;
    let loc = track
        .recv_until("rider_location after pickup", T, |v| {
            v["type"] == "rider_location" && (v["lat"].as_f64().unwrap() - p.0).abs() < 1e-9
        })
        .await;
    let eta = loc["eta_s"].as_f64().expect("eta_s");
    assert!(
        eta > 0.0 && eta < eta_before_pickup,
        "eta {eta} (before pickup {eta_before_pickup})"
    );

    // Delivered.
    near.report("delivered", &id).await;
    let done = near.ws.recv_type("order_updated", T).await;
    assert_eq!(done["order"]["status"], "delivered");
    versions.push(done["order"]["version"].as_u64().unwrap());
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "version grows on every change: {versions:?}"
    );
    track
        .recv_until("status delivered", T, |v| {
            v["type"] == "status" && v["status"] == "delivered"
        })
        .await;

    let got = app
        .get(&format!("/orders/{id}"), Some(&customer.token))
        .await
        .expect(200);
    assert_eq!(got["status"], "delivered");
    assert_eq!(got["rider_id"], near.id.as_str());
    assert_eq!(got["total_cents"], 3400);
    assert_eq!(got["eta_s"], Value::Null);
    assert_eq!(got["version"].as_u64(), versions.last().copied());
    assert_eq!(
        strs(&got["timeline"], "status"),
        [
            "pending_payment",
            "paid",
            "accepted",
            "assigned",
            "picked_up",
            "delivered"
        ]
    );
    let times: Vec<u64> = got["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["at_ms"].as_u64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "timeline out of order: {times:?}"
    );

    // After delivery the rider's fixes are no longer the customer's business.
    near.move_to(offset(SHOP, 400.0, 400.0)).await;
    merchant_ws
        .expect_no_type("rider_arriving", Duration::from_millis(100))
        .await;
    track
        .expect_no_type("rider_location", Duration::from_millis(800))
        .await;

    // The far rider never saw this order.
    far.ws
        .expect_no_type("offer", Duration::from_millis(200))
        .await;
    assert_denied(&app.get(&format!("/orders/{id}"), Some(&far.token)).await);
}
