//! Webhooks (docs/protocol.md, "Webhooks") against a running server and a real receiver:
//! signed events in order, retries, dead letters and replay, refusals.

use crate::helpers::*;
use dispatchd::settings::Settings;
use serde_json::{json, Value};

const STATUS: &str = "order.status_changed";

/// Short backoff so retries happen within a test; receivers on 127.0.0.1.
fn fast(s: &mut Settings) {
    s.webhooks.allow_private = true;
    s.webhooks.backoff_base_ms = 50;
    s.webhooks.backoff_max_ms = 200;
    s.webhooks.timeout_ms = 2000;
    s.webhooks.max_attempts = 5;
}

fn statuses(got: &[Received]) -> Vec<(Value, Value)> {
    got.iter()
        .map(|r| {
            let d = &r.json["data"];
            (d["order"]["status"].clone(), d["previous_status"].clone())
        })
        .collect()
}

#[actix_web::test]
async fn an_order_s_status_changes_arrive_signed_and_in_order() {
    let (app, c, m) = spawn_shop(fast).await;
    let receiver = Receiver::start();
    let hook = app.subscribe_webhook(&receiver.url(), &[STATUS]).await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "a generated secret: {hook}");
    assert_eq!(hook["events"], json!([STATUS]));
    assert_eq!(hook["url"], receiver.url());
    let mut rider = app.rider_at(SHOP).await;
    let id = app.accepted_order(&c, &m).await;
    rider.take_order(&id).await;
    rider.report("picked_up", &id).await;
    rider.report("delivered", &id).await;
    let got = receiver.wait_accepted(6, T).await;
    assert_eq!(
        statuses(&got),
        vec![
            (json!("pending_payment"), Value::Null),
            (json!("paid"), json!("pending_payment")),
            (json!("accepted"), json!("paid")),
            (json!("assigned"), json!("accepted")),
            (json!("picked_up"), json!("assigned")),
            (json!("delivered"), json!("picked_up")),
        ]
    );
    let mut event_ids = Vec::new();
    for r in &got {
        assert_signed(r, &secret);
        assert_eq!(r.json["type"], STATUS);
        assert_eq!(r.json["data"]["order"]["order_id"], id.as_str());
        assert_eq!(r.header("dispatch-event-type"), STATUS);
        assert_eq!(
            r.header("dispatch-event-id"),
            r.json["id"].as_str().unwrap()
        );
        assert_eq!(r.header("dispatch-delivery-attempt"), "1");
        assert_eq!(r.header("content-type"), "application/json");
        event_ids.push(r.header("dispatch-event-id").to_string());
    }
    event_ids.dedup();
    assert_eq!(event_ids.len(), 6, "one id per event");
    // A signature made with another secret does not verify.
    let forged = std::panic::catch_unwind(|| assert_signed(&got[0], "whsec_someone_else"));
    assert!(forged.is_err(), "a wrong secret must not verify");
    let list = app
        .get("/webhooks", Some(&app.dispatcher))
        .await
        .expect(200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["webhook_id"], hook["webhook_id"]);
    assert!(
        list[0].get("secret").is_none(),
        "the secret is shown only once: {list}"
    );
}

#[actix_web::test]
async fn escalations_reach_the_subscriptions_that_asked_for_them() {
    let (app, c, m) = spawn_shop(|s| {
        fast(s);
        // Opened after 2 s; the order would be cancelled at 4 s, long after the accept.
        s.timers.merchant_accept_s = 2.0;
    })
    .await;
    let escalations = Receiver::start();
    let orders = Receiver::start();
    let secret = "a-secret-of-our-own-choosing";
    let body = json!({"url": escalations.url(), "events": ["escalation.opened", "escalation.resolved"], "secret": secret});
    let hook = app
        .post("/webhooks", Some(&app.dispatcher), &body)
        .await
        .expect(201);
    assert_eq!(hook["secret"], secret);
    app.subscribe_webhook(&orders.url(), &[STATUS]).await;
    let id = app.placed_order(&c, &m).await;
    app.pay(&c, &id).await;
    // Not accepted within merchant_accept_s: escalation opened; accepting resolves it.
    let opened = escalations.wait_accepted(1, T).await;
    assert_eq!(opened[0].json["type"], "escalation.opened");
    let e = &opened[0].json["data"]["escalation"];
    assert_eq!(
        (e["kind"].as_str(), e["order_id"].as_str()),
        (Some("merchant_unresponsive"), Some(id.as_str()))
    );
    assert_signed(&opened[0], secret);
    app.accept(&m, &id).await;
    let both = escalations.wait_accepted(2, T).await;
    assert_eq!(both[1].json["type"], "escalation.resolved");
    assert_eq!(
        both[1].json["data"]["escalation"]["escalation_id"],
        e["escalation_id"]
    );
    // The order subscription saw the statuses and no escalation.
    let got = orders.wait_accepted(3, T).await;
    assert!(got.iter().all(|r| r.json["type"] == STATUS), "{got:?}");
}

#[actix_web::test]
async fn a_failing_receiver_gets_the_same_event_again_until_it_answers() {
    let (app, c, m) = spawn_shop(fast).await;
    let receiver = Receiver::start();
    receiver.fail_next(2);
    let hook = app.subscribe_webhook(&receiver.url(), &[STATUS]).await;
    app.placed_order(&c, &m).await;
    let got = receiver.wait_accepted(1, T).await;
    let all = receiver.all();
    assert_eq!(all.len(), 3, "two failures, then the delivery: {all:?}");
    let tries: Vec<_> = all
        .iter()
        .map(|r| (r.status, r.header("dispatch-delivery-attempt").to_string()))
        .collect();
    assert_eq!(
        tries,
        vec![(500, "1".into()), (500, "2".into()), (200, "3".into())]
    );
    assert!(all
        .iter()
        .all(|r| r.header("dispatch-event-id") == got[0].header("dispatch-event-id")));
    assert!(
        all.iter().all(|r| r.body == got[0].body),
        "the same body each time"
    );
    assert_signed(&got[0], hook["secret"].as_str().unwrap());
    let dead = app
        .get("/webhooks/dead-letters", Some(&app.dispatcher))
        .await
        .expect(200);
    assert_eq!(dead, json!([]));
    let scrape = app.get("/metrics", None).await.text;
    assert!(
        scrape.contains(r#"dispatch_webhook_deliveries_total{outcome="retried"}"#),
        "retries are counted"
    );
}

#[actix_web::test]
async fn a_receiver_that_keeps_failing_gets_a_dead_letter_the_dispatcher_replays() {
    let (app, c, m) = spawn_shop(|s| {
        fast(s);
        s.webhooks.max_attempts = 2;
    })
    .await;
    let receiver = Receiver::start();
    receiver.fail_all(true);
    let hook = app.subscribe_webhook(&receiver.url(), &[STATUS]).await;
    let id = app.placed_order(&c, &m).await;
    let dead = wait_for("a dead letter", T, || async {
        let d = app
            .get("/webhooks/dead-letters", Some(&app.dispatcher))
            .await
            .expect(200);
        (d.as_array().unwrap().len() == 1).then_some(d[0].clone())
    })
    .await;
    assert_eq!(receiver.all().len(), 2, "max_attempts attempts");
    assert_eq!(dead["webhook_id"], hook["webhook_id"]);
    assert_eq!(dead["attempts"], 2);
    assert_eq!(dead["last_error"], "HTTP 500");
    assert_eq!(dead["event_type"], STATUS);
    assert!(dead["failed_ms"].as_u64().unwrap() >= dead["created_ms"].as_u64().unwrap());
    assert_eq!(dead["payload"]["data"]["order"]["order_id"], id.as_str());
    receiver.fail_all(false);
    let path = format!(
        "/webhooks/dead-letters/{}/replay",
        dead["delivery_id"].as_str().unwrap()
    );
    let queued = app
        .post(&path, Some(&app.dispatcher), &json!({}))
        .await
        .expect(202);
    assert_eq!(queued["delivery_id"], dead["delivery_id"]);
    assert_eq!(queued["attempts"], 0);
    let got = receiver.wait_accepted(1, T).await;
    assert_eq!(
        got[0].header("dispatch-event-id"),
        dead["event_id"].as_str().unwrap()
    );
    assert_eq!(got[0].header("dispatch-delivery-attempt"), "1");
    assert_signed(&got[0], hook["secret"].as_str().unwrap());
    let left = app
        .get("/webhooks/dead-letters", Some(&app.dispatcher))
        .await
        .expect(200);
    assert_eq!(left, json!([]));
    app.post(&path, Some(&app.dispatcher), &json!({}))
        .await
        .expect_error(404, "not_found");
}

#[actix_web::test]
async fn a_deleted_subscription_gets_nothing_more() {
    let (app, c, m) = spawn_shop(fast).await;
    let (gone, kept) = (Receiver::start(), Receiver::start());
    let hook = app.subscribe_webhook(&gone.url(), &[STATUS]).await;
    app.subscribe_webhook(&kept.url(), &[STATUS]).await;
    let path = format!("/webhooks/{}", hook["webhook_id"].as_str().unwrap());
    let r = app
        .raw(
            reqwest::Method::DELETE,
            &path,
            Some(&app.dispatcher),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    let r = app
        .raw(
            reqwest::Method::DELETE,
            &path,
            Some(&app.dispatcher),
            None,
            &[],
        )
        .await;
    r.expect_error(404, "not_found");
    app.placed_order(&c, &m).await;
    kept.wait_accepted(1, T).await;
    assert!(gone.all().is_empty(), "a deleted subscription was called");
    let list = app
        .get("/webhooks", Some(&app.dispatcher))
        .await
        .expect(200);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn bad_subscriptions_are_refused_and_nothing_is_stored() {
    let app = spawn_app(|s| s.webhooks.max_subscriptions = 1).await;
    let d = Some(app.dispatcher.as_str());
    let ok_url = "https://hooks.example.com/dispatch";
    for (body, what) in [
        (
            json!({"url": "ftp://hooks.example.com/", "events": [STATUS]}),
            "ftp",
        ),
        (json!({"url": "not a url", "events": [STATUS]}), "no url"),
        (
            json!({"url": "https://u:p@hooks.example.com/", "events": [STATUS]}),
            "credentials",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "events": [STATUS]}),
            "loopback",
        ),
        (
            json!({"url": "http://169.254.169.254/latest/meta-data", "events": [STATUS]}),
            "metadata",
        ),
        (
            json!({"url": "http://localhost:8080/", "events": [STATUS]}),
            "localhost",
        ),
        (json!({"url": ok_url, "events": []}), "no events"),
        (
            json!({"url": ok_url, "events": ["order.created"]}),
            "unknown event",
        ),
        (
            json!({"url": ok_url, "events": STATUS}),
            "events not a list",
        ),
        (json!({"url": ok_url}), "events missing"),
        (
            json!({"url": ok_url, "events": [STATUS], "secret": "short"}),
            "short secret",
        ),
        (
            json!({"url": ok_url, "events": [STATUS], "secret": 7}),
            "secret not a string",
        ),
        (
            json!({"url": ok_url, "events": [STATUS], "sekret": "0123456789abcdef"}),
            "unknown field",
        ),
        (
            json!({"url": format!("https://e.com/{}", "a".repeat(3000)), "events": [STATUS]}),
            "long url",
        ),
    ] {
        app.post("/webhooks", d, &body)
            .await
            .expect_code(400, "invalid_input", what);
    }
    app.raw(
        reqwest::Method::POST,
        "/webhooks",
        d,
        Some(b"{".to_vec()),
        &[],
    )
    .await
    .expect_error(400, "invalid_input");
    assert_eq!(app.get("/webhooks", d).await.expect(200), json!([]));
    // One is allowed here; the next is over the cap.
    app.subscribe_webhook(ok_url, &[STATUS]).await;
    app.post("/webhooks", d, &json!({"url": ok_url, "events": [STATUS]}))
        .await
        .expect_error(409, "limit_reached");
    assert_eq!(
        app.get("/webhooks", d)
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for path in [
        "/webhooks/wh_nope",
        "/webhooks/o_123",
        "/webhooks/dead-letters",
    ] {
        app.raw(reqwest::Method::DELETE, path, d, None, &[])
            .await
            .expect_code(404, "not_found", path);
    }
    for path in [
        "/webhooks/dead-letters/whd_nope/replay",
        "/webhooks/dead-letters/x/replay",
    ] {
        app.post(path, d, &json!({}))
            .await
            .expect_code(404, "not_found", path);
    }
}

#[actix_web::test]
async fn only_the_dispatcher_manages_webhooks() {
    let (app, c, m) = spawn_shop(fast).await;
    let body = json!({"url": "https://hooks.example.com/", "events": [STATUS]});
    let calls = [
        (reqwest::Method::POST, "/webhooks"),
        (reqwest::Method::GET, "/webhooks"),
        (reqwest::Method::DELETE, "/webhooks/wh_abc"),
        (reqwest::Method::GET, "/webhooks/dead-letters"),
        (
            reqwest::Method::POST,
            "/webhooks/dead-letters/whd_abc/replay",
        ),
    ];
    for (method, path) in calls {
        let bytes = Some(body.to_string().into_bytes());
        for token in [c.token.as_str(), m.token.as_str()] {
            app.raw(method.clone(), path, Some(token), bytes.clone(), &[])
                .await
                .expect_code(403, "forbidden", path);
        }
        app.raw(method.clone(), path, None, bytes, &[])
            .await
            .expect_code(401, "unauthorized", path);
    }
    assert_eq!(
        app.get("/webhooks", Some(&app.dispatcher))
            .await
            .expect(200),
        json!([])
    );
}
