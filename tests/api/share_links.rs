//! Share links (PROTOCOL.md, "Share links"): the order's customer makes an expiring,
//! revocable link with a privacy level; anyone holding it follows the order without an
//! account; it stops working at expiry, at revocation, or `share.after_final_s` after the
//! order became final, and its open sockets close then.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn links_path(order_id: &str) -> String {
    format!("/orders/{order_id}/share-links")
}

/// A link made by `c` for its order; the 201 body.
async fn share(app: &TestApp, c: &Customer, order_id: &str, ttl_s: u64, privacy: &str) -> Value {
    let body = json!({"ttl_s": ttl_s, "privacy": privacy});
    app.post(&links_path(order_id), Some(&c.token), &body)
        .await
        .expect(201)
}

fn token_of(link: &Value) -> &str {
    link["token"].as_str().unwrap()
}

/// `GET /shared?token=…`, no account.
async fn shared(app: &TestApp, token: &str) -> Resp {
    app.get(&format!("/shared?token={token}"), None).await
}

/// The page a link opens: status and body.
async fn page(app: &TestApp, url: &str) -> (u16, String) {
    let r = app
        .client
        .get(format!("{}{url}", app.base))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The share socket, snapshot read and returned.
async fn share_socket(app: &TestApp, token: &str) -> (WsClient, Value) {
    app.ws_with(&format!("/ws/share?token={token}"), "snapshot")
        .await
}

/// An order the rider `r` holds (assigned), for customer `c` at merchant `m`.
async fn assigned_order(app: &TestApp, c: &Customer, m: &Merchant, r: &mut Rider) -> String {
    let id = app.accepted_order(c, m).await;
    r.take_order(&id).await;
    id
}

#[actix_web::test]
async fn a_customer_shares_an_order_and_only_they_manage_its_links() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let other = app.customer().await;
    let id = app.placed_order(&c, &m).await;

    let link = share(&app, &c, &id, 600, "status").await;
    let token = token_of(&link);
    assert_eq!(token.len(), 32, "128 random bits as hex: {link}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{link}");
    assert_eq!(link["url"], format!("/s/{token}"));
    assert_eq!(link["privacy"], "status");
    assert_eq!(link["order_id"], id.as_str());
    assert!(link["id"].as_str().unwrap().starts_with("sl_"));
    let expires = link["expires_at_ms"].as_u64().unwrap();
    assert!(expires.abs_diff(now_ms() + 600_000) < 5_000, "{link}");
    let second = share(&app, &c, &id, 60, "status_and_position").await;
    assert_ne!(token_of(&second), token);

    let listed = app.get(&links_path(&id), Some(&c.token)).await.expect(200);
    assert_eq!(
        strs(&listed, "id"),
        [&link["id"], &second["id"]].map(|v| v.as_str().unwrap())
    );

    // Nobody else creates, lists or revokes the order's links (BOLA).
    let body = json!({"ttl_s": 600, "privacy": "status"});
    let merchant = app.post(&links_path(&id), Some(&m.token), &body).await;
    assert_denied(&merchant);
    assert_denied(&app.post(&links_path(&id), Some(&other.token), &body).await);
    assert_denied(&app.get(&links_path(&id), Some(&other.token)).await);
    let one = format!("{}/{}", links_path(&id), link["id"].as_str().unwrap());
    let r = app
        .call(Method::DELETE, &one, Some(&other.token), &json!({}), &[])
        .await;
    assert_denied(&r);
    app.post(&links_path(&id), None, &body)
        .await
        .expect_error(401, "unauthorized");
    // Bad bodies change nothing.
    for bad in [
        json!({"ttl_s": 10, "privacy": "status"}),
        json!({"ttl_s": 86_401, "privacy": "status"}),
        json!({"ttl_s": 600, "privacy": "everything"}),
        json!({"privacy": "status"}),
        json!({"ttl_s": -5, "privacy": "status"}),
    ] {
        let r = app.post(&links_path(&id), Some(&c.token), &bad).await;
        r.expect_code(400, "invalid_input", &bad.to_string());
    }
    app.post(&links_path("o_nope"), Some(&c.token), &body)
        .await
        .expect_error(404, "not_found");
    let listed = app.get(&links_path(&id), Some(&c.token)).await.expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // Without an account: the page and the shared order, with nothing about the people.
    let (status, html) = page(&app, link["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(html.contains("/static/track.js"), "the tracking page");
    let seen = shared(&app, token).await.expect(200);
    assert_eq!(seen["order"]["order_id"], id.as_str());
    assert_eq!(seen["order"]["status"], "pending_payment");
    assert_eq!(seen["privacy"], "status");
    for hidden in ["customer_id", "rider_id", "payment_ref", "version"] {
        assert!(
            seen["order"].get(hidden).is_none(),
            "{hidden} shown: {seen}"
        );
    }
    shared(&app, &"0".repeat(32))
        .await
        .expect_error(404, "not_found");
    shared(&app, "not-a-token")
        .await
        .expect_error(404, "not_found");
    assert_eq!(page(&app, &format!("/s/{}", "0".repeat(32))).await.0, 404);

    // Revoked: 410 everywhere, and again revoking answers the same.
    let r = app
        .call(Method::DELETE, &one, Some(&c.token), &json!({}), &[])
        .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    let r = app
        .call(Method::DELETE, &one, Some(&c.token), &json!({}), &[])
        .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    let gone = shared(&app, token).await;
    gone.expect_error(410, "gone");
    assert!(gone.text.contains("revoked"), "{}", gone.text);
    assert_eq!(page(&app, &format!("/s/{token}")).await.0, 410);
    assert_eq!(
        app.ws(&format!("/ws/share?token={token}")).await.err(),
        Some(410)
    );
    let listed = app.get(&links_path(&id), Some(&c.token)).await.expect(200);
    assert!(listed[0]["revoked_ms"].as_u64().is_some(), "{listed}");
    // The other link still works.
    shared(&app, token_of(&second)).await.expect(200);
}

#[actix_web::test]
async fn live_links_per_order_are_capped() {
    let (app, c, m) = spawn_shop(|s| s.share.max_links_per_order = 2).await;
    let id = app.placed_order(&c, &m).await;
    let a = share(&app, &c, &id, 600, "status").await;
    share(&app, &c, &id, 600, "status").await;
    let body = json!({"ttl_s": 600, "privacy": "status"});
    app.post(&links_path(&id), Some(&c.token), &body)
        .await
        .expect_error(409, "limit_reached");
    // A revoked link makes room.
    let one = format!("{}/{}", links_path(&id), a["id"].as_str().unwrap());
    app.call(Method::DELETE, &one, Some(&c.token), &json!({}), &[])
        .await;
    share(&app, &c, &id, 600, "status").await;
}

#[actix_web::test]
async fn privacy_status_never_sends_the_rider_position() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let mut rider = app.rider_at(offset(SHOP, 200.0, 0.0)).await;
    let id = assigned_order(&app, &c, &m, &mut rider).await;
    let status_only = share(&app, &c, &id, 600, "status").await;
    let with_position = share(&app, &c, &id, 600, "status_and_position").await;

    let (mut quiet, snap) = share_socket(&app, token_of(&status_only)).await;
    assert_eq!(snap["order"]["status"], "assigned");
    assert_eq!(snap["privacy"], "status");
    assert_eq!(snap["order"]["eta_s"], Value::Null, "{snap}");
    assert!(snap["order"].get("rider_id").is_none(), "{snap}");
    assert!(snap["order"].get("customer_id").is_none(), "{snap}");
    let (mut full, snap) = share_socket(&app, token_of(&with_position)).await;
    assert_eq!(snap["privacy"], "status_and_position");
    assert!(snap["order"].get("rider_id").is_none(), "{snap}");

    let p = offset(SHOP, 100.0, 0.0);
    rider.move_to(p).await;
    let loc = full.recv_type("rider_location", T).await;
    assert!((loc["lat"].as_f64().unwrap() - p.0).abs() < 1e-9, "{loc}");
    // The position reached the other socket; the status-only one got nothing of it.
    rider.move_to(SHOP).await;
    full.recv_type("rider_location", T).await;
    let came = quiet
        .expect_no_type("rider_location", Duration::from_millis(300))
        .await;
    assert!(came.iter().all(|f| f.get("lat").is_none()), "{came:?}");
    assert!(shared(&app, token_of(&status_only)).await.expect(200)["order"]["eta_s"].is_null());

    // Status changes reach both.
    rider.report("picked_up", &id).await;
    for ws in [&mut quiet, &mut full] {
        ws.recv_until("status picked_up", T, |v| {
            v["type"] == "status" && v["status"] == "picked_up"
        })
        .await;
    }
    rider.move_to(offset(SHOP, 300.0, 300.0)).await;
    full.recv_type("rider_location", T).await;
    quiet
        .expect_no_type("rider_location", Duration::from_millis(300))
        .await;
}

#[actix_web::test]
async fn a_link_dies_at_expiry_revocation_or_after_the_order_ends_and_its_socket_closes() {
    let (app, c, m) = spawn_shop(|s| {
        s.share.min_ttl_s = 1;
        s.share.after_final_s = 0.5;
    })
    .await;
    let id = app.placed_order(&c, &m).await;

    // Expiry: a 1 s link closes its socket with 1008 and answers 410.
    let short = share(&app, &c, &id, 1, "status").await;
    let (mut ws, _) = share_socket(&app, token_of(&short)).await;
    assert_eq!(ws.close_code(T).await, CloseCode::Policy);
    let gone = shared(&app, token_of(&short)).await;
    gone.expect_error(410, "gone");
    assert!(gone.text.contains("expired"), "{}", gone.text);

    // Revocation closes an open socket at once.
    let revoked = share(&app, &c, &id, 600, "status_and_position").await;
    let (mut ws, _) = share_socket(&app, token_of(&revoked)).await;
    let one = format!("{}/{}", links_path(&id), revoked["id"].as_str().unwrap());
    let r = app
        .call(Method::DELETE, &one, Some(&c.token), &json!({}), &[])
        .await;
    assert_eq!(r.status.as_u16(), 204);
    assert_eq!(ws.close_code(T).await, CloseCode::Policy);

    // The order ends: the socket sees the final status, then closes after_final_s later.
    let kept = share(&app, &c, &id, 600, "status").await;
    let (mut ws, _) = share_socket(&app, token_of(&kept)).await;
    app.order_call(
        &id,
        "cancel",
        &c.token,
        json!({"reason": "changed my mind"}),
    )
    .await
    .expect(200);
    let st = ws.recv_type("status", T).await;
    assert_eq!(st["status"], "cancelled");
    // Within the grace the link still answers, with the final status.
    let seen = shared(&app, token_of(&kept)).await;
    if seen.status.as_u16() == 200 {
        assert_eq!(seen.body["order"]["status"], "cancelled");
    }
    assert_eq!(ws.close_code(T).await, CloseCode::Policy);
    let gone = shared(&app, token_of(&kept)).await;
    gone.expect_error(410, "gone");
    assert!(gone.text.contains("finished"), "{}", gone.text);
    // A finished order can no longer be shared.
    app.post(
        &links_path(&id),
        Some(&c.token),
        &json!({"ttl_s": 60, "privacy": "status"}),
    )
    .await
    .expect_error(409, "invalid_transition");
}
