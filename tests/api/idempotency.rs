//! Scenario 2: `Idempotency-Key` on create and pay.

use crate::helpers::*;
use serde_json::json;

#[actix_web::test]
async fn create_with_the_same_key_and_body_replays_the_first_response() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let body = app.order_body(&m, 2);

    let first = app
        .post_with_key("/orders", &c.token, "key-create-1", &body)
        .await;
    assert_eq!(first.status.as_u16(), 201, "{}", first.text);
    let again = app
        .post_with_key("/orders", &c.token, "key-create-1", &body)
        .await;
    assert_eq!(again.status, first.status);
    assert_eq!(again.text, first.text, "the replay is verbatim");
    let order_id = first.body["order_id"].as_str().unwrap().to_string();
    assert_eq!(
        app.live_order_ids().await,
        vec![order_id.clone()],
        "exactly one order exists"
    );

    // Same key, another body: refused, nothing created.
    let other = app.order_body(&m, 3);
    app.post_with_key("/orders", &c.token, "key-create-1", &other)
        .await
        .expect_error(409, "idempotency_key_reused");
    assert_eq!(app.live_order_ids().await.len(), 1);

    // Keys are scoped by caller: another customer's identical key is a new request.
    let c2 = app.customer().await;
    let theirs = app
        .post_with_key("/orders", &c2.token, "key-create-1", &body)
        .await
        .expect(201);
    assert_ne!(theirs["order_id"], order_id.as_str());
    assert_eq!(theirs["customer_id"], c2.id.as_str());

    // Key length: 128 is fine, 129 is 400 (and creates nothing).
    let before = app.live_order_ids().await.len();
    let long = "k".repeat(129);
    app.post_with_key("/orders", &c.token, &long, &body)
        .await
        .expect_error(400, "invalid_input");
    assert_eq!(app.live_order_ids().await.len(), before);
    let ok = "k".repeat(128);
    app.post_with_key("/orders", &c.token, &ok, &body)
        .await
        .expect(201);
    assert_eq!(app.live_order_ids().await.len(), before + 1);
}

#[actix_web::test]
async fn pay_with_the_same_key_replays_and_a_different_body_is_refused() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let id = app.placed_order(&c, &m).await;
    let path = format!("/orders/{id}/pay");
    let body = json!({"payment_ref": "pay_1"});

    let first = app.post_with_key(&path, &c.token, "pay-key", &body).await;
    assert_eq!(first.status.as_u16(), 200, "{}", first.text);
    assert_eq!(first.body["status"], "paid");
    let again = app.post_with_key(&path, &c.token, "pay-key", &body).await;
    assert_eq!((again.status, &again.text), (first.status, &first.text));

    // The replay had no effect: the version is the first payment's.
    let now = app.order_state(&id).await;
    assert_eq!(now["version"], first.body["version"]);
    assert_eq!(now["status"], "paid");

    app.post_with_key(&path, &c.token, "pay-key", &json!({"payment_ref": "pay_2"}))
        .await
        .expect_error(409, "idempotency_key_reused");
    // A new key runs again and meets the state machine: another payment of a paid order is
    // refused, the same payment_ref again is the payment already made (200, no change).
    app.post_with_key(
        &path,
        &c.token,
        "pay-key-2",
        &json!({"payment_ref": "pay_2"}),
    )
    .await
    .expect_error(409, "invalid_transition");
    let same = app.post_with_key(&path, &c.token, "pay-key-3", &body).await;
    assert_eq!(same.status.as_u16(), 200, "{}", same.text);
    assert_eq!(same.body["version"], first.body["version"]);
    assert_eq!(app.order_state(&id).await["version"], first.body["version"]);

    // Key length applies to pay too.
    app.post_with_key(&path, &c.token, &"p".repeat(129), &body)
        .await
        .expect_error(400, "invalid_input");
}

#[actix_web::test]
async fn a_failed_request_stores_nothing_so_its_corrected_retry_runs() {
    let (app, c, m) = spawn_shop(|_| {}).await;

    // Invalid body (qty 0) then a corrected body with the same key.
    app.post_with_key("/orders", &c.token, "retry-1", &app.order_body(&m, 0))
        .await
        .expect_error(400, "invalid_input");
    let created = app
        .post_with_key("/orders", &c.token, "retry-1", &app.order_body(&m, 1))
        .await
        .expect(201);
    assert_eq!(created["status"], "pending_payment");

    // The merchant is closed: 409 merchant_closed; once open the very same request works.
    let body = app.order_body(&m, 2);
    app.set_open(&m, false).await.expect(200);
    app.post_with_key("/orders", &c.token, "retry-2", &body)
        .await
        .expect_error(409, "merchant_closed");
    app.set_open(&m, true).await.expect(200);
    let second = app
        .post_with_key("/orders", &c.token, "retry-2", &body)
        .await
        .expect(201);
    assert_eq!(second["total_cents"], 2 * 1250);

    // Pay: someone else's order is refused, and that stores nothing for the owner either.
    let id = second["order_id"].as_str().unwrap().to_string();
    let path = format!("/orders/{id}/pay");
    let mallory = app.customer().await;
    let pay = |token: String, body: serde_json::Value| {
        let (app, path) = (&app, &path);
        async move { app.post_with_key(path, &token, "pay-retry", &body).await }
    };
    let good = json!({"payment_ref": "x"});
    assert_denied(&pay(mallory.token.clone(), good.clone()).await);
    // An invalid payment body fails and stores nothing; the corrected retry pays.
    for bad in [json!({"payment_ref": ""}), json!({"wrong": "shape"})] {
        pay(c.token.clone(), bad)
            .await
            .expect_error(400, "invalid_input");
    }
    assert_eq!(app.order_state(&id).await["status"], "pending_payment");
    let paid = pay(c.token.clone(), good.clone()).await.expect(200);
    assert_eq!(paid["status"], "paid");
    // Mallory's retry with the same key still gets nothing.
    assert_denied(&pay(mallory.token.clone(), good).await);
}

#[actix_web::test]
async fn concurrent_duplicates_create_one_order() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let body = app.order_body(&m, 1);
    let (a, b) = tokio::join!(
        app.post_with_key("/orders", &c.token, "dup", &body),
        app.post_with_key("/orders", &c.token, "dup", &body)
    );
    let ok: Vec<_> = [&a, &b]
        .into_iter()
        .filter(|r| r.status.as_u16() == 201)
        .collect();
    assert!(!ok.is_empty(), "neither succeeded: {} / {}", a.text, b.text);
    for r in [&a, &b] {
        if r.status.as_u16() != 201 {
            r.expect_error(409, "request_in_progress");
        }
    }
    if ok.len() == 2 {
        assert_eq!(a.text, b.text);
    }
    assert_eq!(app.live_order_ids().await.len(), 1, "one order for one key");
    // Afterwards the key replays.
    let again = app.post_with_key("/orders", &c.token, "dup", &body).await;
    assert_eq!(again.text, ok[0].text);
}
