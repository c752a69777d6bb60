//! Authorization review (OWASP API Top 10) checks not covered elsewhere: property-level
//! authorization (mass assignment) and object-level checks on the rider socket's offers.
//! docs/reliability.md lists every check and the test that proves it.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

/// API3: fields a client does not own (status, prices, totals, owner, rider, version) in
/// a create-order body are ignored: the order is built from the menu and the caller.
#[actix_web::test]
async fn an_order_body_cannot_set_its_status_price_owner_or_rider() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let other = app.customer().await;
    let rider = app.rider_connected().await;
    let mut body = app.order_body(&m, 2);
    let extra = json!({
        "status": "delivered", "state": "delivered", "total_cents": 1, "price_cents": 1,
        "customer_id": other.id, "rider_id": rider.id, "version": 99, "ready": true,
        "order_id": "o_chosen", "payment_ref": "free"
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body["items"][0]["price_cents"] = json!(1);
    body["items"][0]["name"] = json!("renamed");
    let o = app.post("/orders", Some(&c.token), &body).await.expect(201);
    assert_eq!(o["status"], "pending_payment");
    assert_eq!(o["total_cents"], 2 * 1250);
    assert_eq!(o["items"][0]["price_cents"], 1250);
    assert_eq!(o["items"][0]["name"], "dan dan noodles");
    assert_eq!(o["customer_id"], c.id.as_str());
    assert_eq!(o["rider_id"], serde_json::Value::Null);
    assert_eq!(o["version"], 1);
    assert_eq!(o["ready"], false);
    assert_ne!(o["order_id"], "o_chosen");
    assert!(o.get("payment_ref").is_none_or(|p| p.is_null()), "{o}");
    // The other customer does not see it.
    let id = o["order_id"].as_str().unwrap();
    assert_denied(&app.get(&format!("/orders/{id}"), Some(&other.token)).await);
}

/// API3: a registration cannot choose its customer id; an item cannot be put on another
/// merchant's menu through a body field; a paying customer cannot set the status.
#[actix_web::test]
async fn ids_and_owners_in_bodies_are_ignored() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let r = app
        .post(
            "/customers",
            None,
            &json!({"username": unique("mass"), "password": "pw-123", "customer_id": c.id}),
        )
        .await
        .expect(201);
    assert_ne!(r["customer_id"], c.id.as_str());

    let m2 = app.merchant_at(offset(SHOP, 300.0, 0.0), 500).await;
    let item =
        json!({"name": "planted", "price_cents": 1, "merchant_id": m2.id, "available": false});
    let created = app
        .post(&format!("/merchants/{}/items", m.id), Some(&m.token), &item)
        .await
        .expect(201);
    assert_eq!(created["merchant_id"], m.id.as_str());
    let theirs = app
        .get(&format!("/merchants/{}/items", m2.id), None)
        .await
        .expect(200);
    assert_eq!(theirs.as_array().unwrap().len(), 1, "{theirs}");

    let id = app.placed_order(&c, &m).await;
    let paid = app
        .order_call(
            &id,
            "pay",
            &c.token,
            json!({"payment_ref": "p", "status": "delivered", "total_cents": 0}),
        )
        .await
        .expect(200);
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["total_cents"], 1250);
}

/// API1 on the rider socket: a rider cannot accept an offer made to another rider.
#[actix_web::test]
async fn a_rider_cannot_accept_an_offer_addressed_to_another_rider() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let mut near = app.rider_at(offset(SHOP, 100.0, 0.0)).await;
    let mut far = app.rider_at(offset(SHOP, 0.0, 900.0)).await;
    let id = app.accepted_order(&c, &m).await;
    let offer = near.expect_offer().await;
    assert_eq!(offer["order_id"], id.as_str());

    far.accept_refused(&offer).await;
    let o = app.order_state(&id).await;
    assert_eq!(
        (o["status"].as_str(), &o["rider_id"]),
        (Some("accepted"), &json!(null))
    );
    // The rider it was made to still takes it.
    let assigned = near.accept(&offer).await;
    assert_eq!(assigned["order"]["rider_id"], near.id.as_str());
}

/// API5: the rider token routes are the dispatcher's; a rider cannot mint itself tokens.
#[actix_web::test]
async fn only_the_dispatcher_issues_or_revokes_rider_tokens() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let rider = app.rider_connected().await;
    let path = format!("/riders/{}/tokens", rider.id);
    for token in [&rider.token, &c.token, &m.token] {
        for method in [Method::POST, Method::DELETE] {
            app.raw(method, &path, Some(token), None, &[])
                .await
                .expect_error(403, "forbidden");
        }
    }
    app.raw(Method::POST, &path, None, None, &[])
        .await
        .expect_error(401, "unauthorized");
}
