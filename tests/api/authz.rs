//! Scenario 6: object- and role-level authorization; nobody reaches another's objects,
//! over REST or over a socket.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

#[actix_web::test]
async fn a_customer_cannot_read_pay_cancel_or_track_anothers_order() {
    let (app, alice, m) = spawn_shop(|_| {}).await;
    let bob = app.customer().await;
    let id = app.placed_order(&alice, &m).await;
    let before = app.order_state(&id).await;

    assert_denied(&app.get(&format!("/orders/{id}"), Some(&bob.token)).await);
    let pay = json!({"payment_ref": "x"});
    assert_denied(&app.order_call(&id, "pay", &bob.token, pay).await);
    assert_denied(&app.order_call(&id, "cancel", &bob.token, json!({})).await);
    assert_denied(
        &app.get(&format!("/orders/{id}/trace"), Some(&bob.token))
            .await,
    );
    assert_eq!(strip_eta(&before), strip_eta(&app.order_state(&id).await));
    // Alice may.
    app.get(&format!("/orders/{id}"), Some(&alice.token))
        .await
        .expect(200);

    // Tracking socket: Bob 403 at the upgrade, no or a bad token 401.
    let track = |t: &str| format!("/ws/orders/{id}/track{t}");
    assert_eq!(
        app.ws(&track(&format!("?token={}", bob.token))).await.err(),
        Some(403)
    );
    assert_eq!(app.ws(&track("")).await.err(), Some(401));
    assert_eq!(app.ws(&track("?token=not-a-token")).await.err(), Some(401));
    assert_eq!(
        app.ws(&track(&format!("?token={}", m.token))).await.err(),
        Some(403)
    );
    let rider = app.rider_connected().await;
    assert_eq!(
        app.ws(&track(&format!("?token={}", rider.token)))
            .await
            .err(),
        Some(403)
    );
    // The owner and the dispatcher may.
    for t in [&alice.token, &app.dispatcher] {
        let (_ws, snap) = app.track(&id, t).await;
        assert_eq!(snap["order"]["order_id"], id.as_str());
    }

    // Missing and wrong tokens on REST: 401.
    app.get(&format!("/orders/{id}"), None)
        .await
        .expect_error(401, "unauthorized");
    app.get(&format!("/orders/{id}"), Some("nope"))
        .await
        .expect_error(401, "unauthorized");
    let r = app
        .raw(
            Method::GET,
            &format!("/orders/{id}"),
            None,
            None,
            &[("authorization", "Basic Zm9vOmJhcg==")],
        )
        .await;
    r.expect_error(401, "unauthorized");
    app.post("/orders", None, &app.order_body(&m, 1))
        .await
        .expect_error(401, "unauthorized");
    // A merchant cannot place an order.
    app.post("/orders", Some(&m.token), &app.order_body(&m, 1))
        .await
        .expect_error(403, "forbidden");
}

#[actix_web::test]
async fn a_rider_cannot_act_on_or_read_an_order_that_is_not_theirs() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let mut holder = app.rider_connected().await;
    holder.online().await;
    let mut other = app.rider_connected().await;
    other.online().await;
    let id = app.accepted_order(&c, &m).await;
    app.assign(&id, &holder.id).await.expect(200);
    holder.ws.recv_type("assigned", T).await;
    let before = app.order_state(&id).await;

    for msg in [
        json!({"type": "picked_up", "order_id": id}),
        json!({"type": "delivered", "order_id": id}),
        json!({"type": "release", "order_id": id}),
        json!({"type": "failed", "order_id": id, "reason": "x"}),
    ] {
        other.send(msg).await;
        other.expect_error("forbidden").await;
    }
    assert_eq!(strip_eta(&before), strip_eta(&app.order_state(&id).await));
    assert_denied(&app.get(&format!("/orders/{id}"), Some(&other.token)).await);
    // The holder may read it.
    app.get(&format!("/orders/{id}"), Some(&holder.token))
        .await
        .expect(200);
    // A rider is not a customer or a merchant.
    for action in ["cancel", "ready"] {
        assert_denied(&app.order_call(&id, action, &holder.token, json!({})).await);
    }
    // Riders connect with rider tokens only.
    assert_eq!(
        app.ws(&format!("/ws/rider?token={}", c.token)).await.err(),
        Some(403)
    );
    assert_eq!(app.ws("/ws/rider?token=bogus").await.err(), Some(401));
    assert_eq!(app.ws("/ws/rider").await.err(), Some(401));
    assert_eq!(
        app.ws(&format!("/ws/merchant?token={}", holder.token))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        app.ws(&format!("/ws/dispatch?token={}", m.token))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(app.ws("/ws/dispatch").await.err(), Some(401));
}

#[actix_web::test]
async fn only_the_dispatcher_reaches_dispatcher_endpoints() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let rider = app.rider_connected().await;
    let id = app.accepted_order(&c, &m).await;
    let calls: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (
            Method::GET,
            "/riders/nearby?lat=31.23&lon=121.47".into(),
            None,
        ),
        (Method::GET, "/riders".into(), None),
        (
            Method::POST,
            "/riders".into(),
            Some(json!({"name": "Sneaky"})),
        ),
        (
            Method::POST,
            "/merchants".into(),
            Some(json!({"name": "Fake", "location": {"lat": 31.0, "lon": 121.0}})),
        ),
        (
            Method::POST,
            format!("/orders/{id}/assign"),
            Some(json!({"rider_id": rider.id})),
        ),
        (
            Method::POST,
            format!("/orders/{id}/unassign"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/orders/{id}/fail"),
            Some(json!({"reason": "x"})),
        ),
        (Method::GET, format!("/orders/{id}/trace"), None),
        (Method::GET, "/escalations?open=true".into(), None),
        (Method::GET, "/escalations".into(), None),
        (
            Method::POST,
            "/escalations/e_abc/resolve".into(),
            Some(json!({})),
        ),
    ];
    for (method, path, body) in &calls {
        let body = body.as_ref().map(|b| b.to_string().into_bytes());
        for token in [&c.token, &m.token, &rider.token] {
            let r = app
                .raw(method.clone(), path, Some(token), body.clone(), &[])
                .await;
            r.expect_code(
                403,
                "forbidden",
                &format!("{method} {path}, not the dispatcher"),
            );
        }
        let r = app.raw(method.clone(), path, None, body.clone(), &[]).await;
        r.expect_code(
            401,
            "unauthorized",
            &format!("{method} {path} without a token"),
        );
    }
    let o = app.order_state(&id).await;
    assert_eq!(
        (o["status"].as_str(), &o["rider_id"]),
        (Some("accepted"), &serde_json::Value::Null)
    );
    // The dispatcher reaches them.
    app.get("/riders/nearby?lat=31.23&lon=121.47", Some(&app.dispatcher))
        .await
        .expect(200);
    app.get(&format!("/orders/{id}/trace"), Some(&app.dispatcher))
        .await
        .expect(200);
    app.get("/escalations", Some(&app.dispatcher))
        .await
        .expect(200);
}

#[actix_web::test]
async fn a_merchant_cannot_touch_another_merchants_orders_or_menu() {
    let (app, c, m1) = spawn_shop(|_| {}).await;
    let m2 = app.merchant_at(offset(SHOP, 300.0, 0.0), 999).await;
    let id = app.placed_order(&c, &m1).await;
    app.pay(&c, &id).await;
    let before = app.order_state(&id).await;

    assert_denied(&app.get(&format!("/orders/{id}"), Some(&m2.token)).await);
    app.get(&format!("/orders/{id}"), Some(&m1.token))
        .await
        .expect(200);
    for (action, body) in [
        ("accept", json!({})),
        ("reject", json!({"reason": "x"})),
        ("ready", json!({})),
    ] {
        assert_denied(&app.order_call(&id, action, &m2.token, body).await);
    }
    assert_eq!(strip_eta(&before), strip_eta(&app.order_state(&id).await));

    let items = format!("/merchants/{}/items", m1.id);
    let fake_item = json!({"name": "fake", "price_cents": 1});
    for (method, path, token, body) in [
        (Method::POST, items.clone(), &m2.token, &fake_item),
        (
            Method::PATCH,
            format!("{items}/{}", m1.item_id),
            &m2.token,
            &json!({"available": false}),
        ),
        (
            Method::PUT,
            format!("/merchants/{}/open", m1.id),
            &m2.token,
            &json!({"open": false}),
        ),
        (Method::POST, items.clone(), &c.token, &fake_item),
    ] {
        app.call(method, &path, Some(token), body, &[])
            .await
            .expect_error(403, "forbidden");
    }
    let menu = app.get(&items, None).await.expect(200);
    assert_eq!(menu.as_array().unwrap().len(), 1);
    assert_eq!(menu[0]["available"], true);

    // The merchant app sees only its own orders.
    let (mut ws2, welcome) = app.merchant_app(&m2).await;
    assert_eq!(welcome["orders"].as_array().unwrap().len(), 0, "{welcome}");
    let (mut ws1, welcome) = app.merchant_app(&m1).await;
    assert_eq!(welcome["orders"][0]["order_id"], id.as_str());
    app.accept(&m1, &id).await;
    ws1.recv_type("order_updated", T).await;
    ws2.expect_none(
        "another merchant's order",
        Duration::from_millis(300),
        |v| v.to_string().contains(&id),
    )
    .await;
}

#[actix_web::test]
async fn usernames_are_unique_and_logins_are_rate_limited() {
    let app = spawn_app(|s| s.rate_limit.auth_per_ip_per_minute = 5).await;
    let c = app.customer().await;
    let r = app.register(&c.username, "another password").await;
    r.expect_error(409, "username_taken");
    // The original password still works, so nothing was overwritten.
    app.login(&c.username, "correct horse").await.expect(200);
    let mut limited = None;
    for i in 0..6 {
        let r = app.login("nobody-here", "whatever1").await;
        if r.status.as_u16() == 429 {
            limited = Some((i, r));
            break;
        }
        r.expect_error(401, "unauthorized");
    }
    let (_, r) = limited.expect("the sixth attempt within a minute is refused");
    r.expect_error(429, "rate_limited");
}
