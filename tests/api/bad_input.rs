//! Scenario 7: bad input: the contract's error, and nothing changes.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[actix_web::test]
async fn malformed_or_invalid_rest_bodies_are_400_and_change_nothing() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let post_raw = |path: &'static str, token: String, body: &'static str| {
        let app = &app;
        async move {
            app.raw(
                Method::POST,
                path,
                Some(&token),
                Some(body.as_bytes().to_vec()),
                &[],
            )
            .await
        }
    };

    // Malformed JSON.
    post_raw("/orders", c.token.clone(), "{\"merchant_id\": ")
        .await
        .expect_error(400, "invalid_input");
    post_raw("/orders", c.token.clone(), "not json at all")
        .await
        .expect_error(400, "invalid_input");
    post_raw("/customers", String::new(), "{")
        .await
        .expect_error(400, "invalid_input");
    post_raw("/merchants", app.dispatcher.clone(), "[1,2")
        .await
        .expect_error(400, "invalid_input");

    // Wrong shapes and invalid values.
    let item = m.item_id.clone();
    let bad_orders: Vec<Value> = vec![
        json!({}),
        json!([]),
        json!({"merchant_id": m.id, "items": "noodles", "dropoff": {"lat": HOME.0, "lon": HOME.1}}),
        json!({"merchant_id": m.id, "items": [{"item_id": item, "qty": "two"}], "dropoff": {"lat": HOME.0, "lon": HOME.1}}),
        json!({"merchant_id": m.id, "items": [{"item_id": item, "qty": -1}], "dropoff": {"lat": HOME.0, "lon": HOME.1}}),
        json!({"merchant_id": m.id, "items": [{"item_id": item, "qty": 0}], "dropoff": {"lat": HOME.0, "lon": HOME.1}}),
        json!({"merchant_id": m.id, "items": [], "dropoff": {"lat": HOME.0, "lon": HOME.1}}),
        json!({"merchant_id": m.id, "items": [{"item_id": item, "qty": 1}]}),
        json!({"merchant_id": m.id, "items": [{"item_id": item, "qty": 1}], "dropoff": {"lat": 91, "lon": HOME.1}}),
        json!({"merchant_id": m.id, "items": [{"item_id": item, "qty": 1}], "dropoff": {"lat": HOME.0, "lon": -180.5}}),
        json!({"merchant_id": m.id, "items": [{"item_id": item, "qty": 1}], "dropoff": {"lat": "31.2", "lon": HOME.1}}),
        json!({"merchant_id": m.id, "items": [{"item_id": "i_nothere", "qty": 1}], "dropoff": {"lat": HOME.0, "lon": HOME.1}}),
        json!({"merchant_id": m.id, "items": [{"item_id": "x_wrongkind", "qty": 1}], "dropoff": {"lat": HOME.0, "lon": HOME.1}}),
    ];
    for body in &bad_orders {
        let r = app.post("/orders", Some(&c.token), body).await;
        r.expect_code(400, "invalid_input", &body.to_string());
    }
    assert!(
        app.live_order_ids().await.is_empty(),
        "no order was created"
    );

    // Other endpoints.
    for (path, token, body) in [
        (
            "/customers",
            None,
            json!({"username": "", "password": "long enough"}),
        ),
        (
            "/customers",
            None,
            json!({"username": "   ", "password": "long enough"}),
        ),
        (
            "/customers",
            None,
            json!({"username": "x".repeat(129), "password": "long enough"}),
        ),
        (
            "/customers",
            None,
            json!({"username": "shorty", "password": ""}),
        ),
        (
            "/customers",
            None,
            json!({"username": 5, "password": "long enough"}),
        ),
        (
            "/merchants",
            Some(&app.dispatcher),
            json!({"name": "X", "location": {"lat": 91, "lon": 0}}),
        ),
        (
            "/merchants",
            Some(&app.dispatcher),
            json!({"name": "X", "location": {"lat": 1, "lon": 0}, "prep_time_s": 7201}),
        ),
        (
            "/merchants",
            Some(&app.dispatcher),
            json!({"name": "", "location": {"lat": 1, "lon": 0}}),
        ),
        ("/riders", Some(&app.dispatcher), json!({"name": 42})),
    ] {
        let r = app.post(path, token.map(String::as_str), &body).await;
        r.expect_code(400, "invalid_input", &format!("{path} {body}"));
    }
    let items = format!("/merchants/{}/items", m.id);
    for item in [
        json!({"name": "free money", "price_cents": -5}),
        json!({"name": "half cent", "price_cents": 1.5}),
    ] {
        app.post(&items, Some(&m.token), &item)
            .await
            .expect_error(400, "invalid_input");
    }
    app.patch(
        &format!("{items}/{}", m.item_id),
        Some(&m.token),
        &json!({"available": "no"}),
    )
    .await
    .expect_error(400, "invalid_input");
    let menu = app.get(&items, None).await.expect(200);
    assert_eq!(menu.as_array().unwrap().len(), 1);
    assert_eq!(
        (
            menu[0]["price_cents"].as_i64(),
            menu[0]["available"].as_bool()
        ),
        (Some(1250), Some(true))
    );

    // Order-level bodies.
    let id = app.placed_order(&c, &m).await;
    app.order_call(&id, "pay", &c.token, json!({"payment_ref": 7}))
        .await
        .expect_error(400, "invalid_input");
    app.pay(&c, &id).await;
    for (action, body) in [
        ("accept", json!({"prep_time_s": 7201})),
        ("accept", json!({"prep_time_s": -1})),
        ("reject", json!({})),
    ] {
        app.order_call(&id, action, &m.token, body)
            .await
            .expect_error(400, "invalid_input");
    }
    assert_eq!(app.order_state(&id).await["status"], "paid");
    app.order_call(&id, "assign", &app.dispatcher, json!({"rider_id": 3}))
        .await
        .expect_error(400, "invalid_input");
    app.get("/escalations?open=maybe", Some(&app.dispatcher))
        .await
        .expect_error(400, "invalid_input");

    // Unknown ids are 404.
    app.get("/orders/o_missing", Some(&app.dispatcher))
        .await
        .expect_error(404, "not_found");
    app.get("/merchants/m_missing/items", None)
        .await
        .expect_error(404, "not_found");
    app.get("/no/such/route", None)
        .await
        .expect_error(404, "not_found");
}

#[actix_web::test]
async fn bodies_over_64_kib_are_413() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let pad = "x".repeat(70 * 1024);
    let mut body = app.order_body(&m, 1);
    body["note"] = json!(pad);
    app.post("/orders", Some(&c.token), &body)
        .await
        .expect_error(413, "payload_too_large");
    app.post(
        "/customers",
        None,
        &json!({"username": pad, "password": "long enough"}),
    )
    .await
    .expect_error(413, "payload_too_large");
    assert!(app.live_order_ids().await.is_empty());
    // Just under the cap is read (and judged on its content).
    let mut ok = app.order_body(&m, 1);
    ok["note"] = json!("y".repeat(60 * 1024));
    app.post("/orders", Some(&c.token), &ok).await.expect(201);
}

#[actix_web::test]
async fn riders_nearby_checks_its_parameters() {
    let app = spawn_app(|_| {}).await;
    let d = app.dispatcher.clone();
    for q in [
        "",
        "?lat=31.2",
        "?lon=121.4",
        "?lat=abc&lon=121.4",
        "?lat=91&lon=121.4",
        "?lat=31.2&lon=181",
        "?lat=NaN&lon=121.4",
        "?lat=31.2&lon=121.4&radius_m=0",
        "?lat=31.2&lon=121.4&radius_m=50001",
        "?lat=31.2&lon=121.4&radius_m=far",
        "?lat=31.2&lon=121.4&limit=0",
        "?lat=31.2&lon=121.4&limit=101",
        "?lat=31.2&lon=121.4&limit=2.5",
    ] {
        let r = app.get(&format!("/riders/nearby{q}"), Some(&d)).await;
        r.expect_code(400, "invalid_input", &format!("nearby{q}"));
    }
    let r = app
        .get(
            "/riders/nearby?lat=31.2&lon=121.4&radius_m=50000&limit=100",
            Some(&d),
        )
        .await;
    assert_eq!(r.expect(200), json!([]));

    // Nearest first, limit honoured, offline riders left out.
    let a = app.rider_at(offset(SHOP, 300.0, 0.0)).await;
    let b = app.rider_at(offset(SHOP, 100.0, 0.0)).await;
    let _c = app.rider_at(offset(SHOP, 0.0, 8000.0)).await;
    let around_shop = format!("/riders/nearby?lat={}&lon={}", SHOP.0, SHOP.1);
    let list = app.get(&around_shop, Some(&d)).await.expect(200);
    assert_eq!(
        strs(&list, "rider_id"),
        [b.id.as_str(), a.id.as_str()],
        "default radius 5000 m, nearest first"
    );
    let d0 = list[0]["distance_m"].as_f64().unwrap();
    assert!((90.0..=110.0).contains(&d0), "{d0}");
    assert_eq!(list[0]["status"], "idle");
    assert!(list[0]["last_seen_ms"].as_u64().is_some());
    let one = app
        .get(&format!("{around_shop}&limit=1"), Some(&d))
        .await
        .expect(200);
    assert_eq!(one.as_array().unwrap().len(), 1);
    let mut b = b;
    b.ws.send_json(json!({"type": "status", "status": "offline"}))
        .await;
    wait_for("the offline rider to leave the list", T, || async {
        app.nearby_rider(&b.id).await.is_none().then_some(())
    })
    .await;
}

#[actix_web::test]
async fn invalid_locations_are_refused_and_not_stored() {
    // More fixes than the default rate limit allows in a burst.
    let app = spawn_app(|s| {
        s.rate_limit.rider_fixes_per_10s = 100;
        s.rate_limit.rider_fix_burst = 100;
    })
    .await;
    let start = offset(SHOP, 200.0, 0.0);
    let mut r = app.rider_at(start).await;
    let listed = app.nearby_rider(&r.id).await.unwrap();
    let ts = r.last_ts;
    let bad = [
        json!({"type": "location", "lat": "31.2", "lon": start.1, "ts_ms": ts + 1000}),
        json!({"type": "location", "lat": null, "lon": start.1, "ts_ms": ts + 1000}),
        json!({"type": "location", "lon": start.1, "ts_ms": ts + 1000}),
        json!({"type": "location", "lat": 91.0, "lon": start.1, "ts_ms": ts + 1000}),
        json!({"type": "location", "lat": start.0, "lon": 180.5, "ts_ms": ts + 1000}),
        json!({"type": "location", "lat": start.0, "lon": start.1, "ts_ms": "soon"}),
        json!({"type": "location", "lat": start.0, "lon": start.1, "ts_ms": now_ms() + 60_000}),
        // 50 km in 10 s.
        json!({"type": "location", "lat": start.0 + 0.45, "lon": start.1, "ts_ms": ts + 10_000}),
    ];
    for fix in &bad {
        r.send(fix.clone()).await;
        let err = r.ws.recv_type("error", T).await;
        assert_eq!(err["code"], "invalid_location", "{fix} answered {err}");
    }
    // NaN cannot be written in JSON; a bare NaN token is not JSON at all.
    r.ws.send_text(format!(
        "{{\"type\":\"location\",\"lat\":NaN,\"lon\":{},\"ts_ms\":{}}}",
        start.1,
        ts + 1000
    ))
    .await;
    let err = r.ws.recv_type("error", T).await;
    assert!(
        matches!(
            err["code"].as_str(),
            Some("invalid_message" | "invalid_location")
        ),
        "{err}"
    );

    let now = app.nearby_rider(&r.id).await.expect("still listed");
    assert_eq!(now["location"], listed["location"], "nothing was stored");
    assert_eq!(now["last_seen_ms"], listed["last_seen_ms"]);

    // An older fix is ignored silently; a valid new one is stored.
    r.send(json!({"type": "location", "lat": start.0 + 0.001, "lon": start.1, "ts_ms": ts - 5000}))
        .await;
    let next = offset(start, 50.0, 0.0);
    r.move_to(next).await;
    let moved = wait_for("the new fix to be stored", T, || async {
        let v = app.nearby_rider(&r.id).await?;
        ((v["location"]["lat"].as_f64()? - next.0).abs() < 1e-9).then_some(v)
    })
    .await;
    assert_eq!(moved["last_seen_ms"], r.last_ts);
    let frames =
        r.ws.expect_none("an error", Duration::from_millis(300), |v| {
            v["type"] == "error"
        })
        .await;
    assert!(frames.is_empty(), "{frames:?}");
}

#[actix_web::test]
async fn malformed_socket_messages_get_an_error_and_the_socket_stays_open() {
    let app = spawn_app(|_| {}).await;
    let mut r = app.rider_connected().await;
    for text in [
        "not json".to_string(),
        "[1,2,3]".to_string(),
        "{}".to_string(),
        json!({"type": "teleport"}).to_string(),
        json!({"type": "status"}).to_string(),
        json!({"type": "status", "status": "asleep"}).to_string(),
        json!({"type": "accept"}).to_string(),
        json!({"type": "picked_up"}).to_string(),
        json!({"type": "failed", "order_id": "o_x"}).to_string(),
        json!({"type": 5}).to_string(),
    ] {
        r.ws.send_text(text.clone()).await;
        let err = r.ws.recv_type("error", T).await;
        assert_eq!(err["code"], "invalid_message", "{text} answered {err}");
        assert!(err["message"].is_string());
    }
    // Still open: a valid message works.
    r.online().await;
    let p = offset(SHOP, 10.0, 10.0);
    r.move_to(p).await;
    let listed = wait_for("the rider to be listed", T, || async {
        app.nearby_rider(&r.id).await
    })
    .await;
    assert!((listed["location"]["lat"].as_f64().unwrap() - p.0).abs() < 1e-9);
}

#[actix_web::test]
async fn a_websocket_message_over_64_kib_closes_the_socket_with_1009() {
    let app = spawn_app(|_| {}).await;
    let mut r = app.rider_connected().await;
    let big =
        json!({"type": "status", "status": "online", "pad": "z".repeat(65 * 1024)}).to_string();
    r.ws.send_text(big).await;
    assert_eq!(r.ws.close_code(T).await, CloseCode::Size);

    // The same on the tracking socket, which takes no input at all.
    let c = app.customer().await;
    let m = app.merchant().await;
    let id = app.placed_order(&c, &m).await;
    let (mut t, _) = app.track(&id, &c.token).await;
    t.send_text("q".repeat(64 * 1024 + 1)).await;
    assert_eq!(t.close_code(T).await, CloseCode::Size);

    // A message sent in fragments, each small, that adds up to more than 64 KiB.
    let mut r3 = app.rider_connected().await;
    let chunk = "f".repeat(30 * 1024).into_bytes();
    r3.ws
        .send_fragmented(&[b"{\"pad\":\"", &chunk, &chunk, &chunk, b"\"}"])
        .await;
    assert_eq!(r3.ws.close_code(T).await, CloseCode::Size);

    // Fragments adding up to less are reassembled into one ordinary message.
    let mut r4 = app.rider_connected().await;
    r4.ws
        .send_fragmented(&[b"{\"type\":", b"\"status\",\"status\":", b"\"online\"}"])
        .await;
    r4.move_to(offset(SHOP, 20.0, 0.0)).await;
    let id4 = r4.id.clone();
    wait_for("the rider online after a fragmented message", T, || {
        app.nearby_rider(&id4)
    })
    .await;

    // Just under the cap is an ordinary (here: invalid) message.
    let mut r2 = app.rider_connected().await;
    r2.ws
        .send_text(format!(
            "{{\"type\":\"nope\",\"pad\":\"{}\"}}",
            "a".repeat(60 * 1024)
        ))
        .await;
    assert_eq!(r2.ws.recv_type("error", T).await["code"], "invalid_message");
}
