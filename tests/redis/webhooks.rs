//! Webhook deliveries survive `kill -9`: pending deliveries (with their attempts) and
//! subscriptions are in Redis, and after a restart they go out (at least once).

use crate::harness::*;
use crate::support::*;
use serde_json::{json, Value};

/// A subscription whose receiver is down collects pending deliveries; the server is
/// killed, restarted, the receiver comes up, and every event arrives signed, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_survive_kill_9_and_go_out_after_the_restart() {
    let (prefix, _cleanup) = fresh_keys();
    let env = [
        ("DISPATCH_WEBHOOKS__ALLOW_PRIVATE", "true"),
        ("DISPATCH_WEBHOOKS__BACKOFF_BASE_MS", "100"),
        ("DISPATCH_WEBHOOKS__BACKOFF_MAX_MS", "300"),
        ("DISPATCH_WEBHOOKS__TIMEOUT_MS", "1000"),
        ("DISPATCH_WEBHOOKS__MAX_ATTEMPTS", "1000"),
    ];
    let s = Server::start_ready(MAIN_REDIS, &prefix, &env).await;
    let api = s.api();
    // Nothing listens on the receiver's port yet: every attempt is refused.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hooks");
    let hook = api.subscribe_webhook(&url, &["order.status_changed"]).await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    let (m, c) = (api.merchant().await, api.customer().await);
    let id = api.placed_order(&c, &m).await;
    api.pay(&c, &id).await;
    api.order_call(&id, "cancel", &c.token, json!({}))
        .await
        .expect(200);
    // All three pending in Redis, the first already tried (refused) at least once.
    let conn = connect(MAIN_REDIS).await;
    let pending_key = format!("{prefix}webhook_pending");
    wait_for("three pending deliveries, one retried", WAIT, || {
        let (mut conn, key) = (conn.clone(), pending_key.clone());
        async move {
            let all: Vec<String> = redis::cmd("HVALS")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            let tried = all
                .iter()
                .filter_map(|v| serde_json::from_str::<Value>(v).ok())
                .any(|d| d["attempts"].as_u64() > Some(0));
            (all.len() == 3 && tried).then_some(())
        }
    })
    .await;
    s.kill9();

    let s = Server::start_ready(MAIN_REDIS, &prefix, &env).await;
    let api = s.api();
    let listed = api
        .get("/webhooks", Some(&api.dispatcher))
        .await
        .expect(200);
    assert_eq!(listed[0]["webhook_id"], hook["webhook_id"], "{listed}");
    let receiver = Receiver::start_on(port);
    let got = receiver.wait_accepted(3, WAIT).await;
    let statuses: Vec<_> = got
        .iter()
        .map(|r| r.json["data"]["order"]["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        vec![json!("pending_payment"), json!("paid"), json!("cancelled")]
    );
    for r in &got {
        assert_signed(r, &secret);
        assert_eq!(r.json["data"]["order"]["order_id"], id.as_str());
    }
    // The first was tried before the kill, and its count of attempts went on; the others
    // waited behind it (one at a time per subscription).
    let first: u32 = got[0].header("dispatch-delivery-attempt").parse().unwrap();
    assert!(first > 1, "attempts counted across the restart: {first}");
    assert_eq!(got[1].header("dispatch-delivery-attempt"), "1");
    // Delivered ones are forgotten.
    wait_for("the pending list to empty", WAIT, || {
        let (mut conn, key) = (conn.clone(), pending_key.clone());
        async move {
            let n: usize = redis::cmd("HLEN")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            (n == 0).then_some(())
        }
    })
    .await;
}
