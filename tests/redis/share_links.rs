//! Share links survive `kill -9` on Redis: a live link still opens the order after a
//! restart, a revoked one stays revoked, and each stored link expires in Redis by itself.

use crate::harness::*;
use crate::support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_links_survive_a_restart_and_a_revoked_one_stays_revoked() {
    let (prefix, _cleanup) = fresh_keys();
    let s = Server::start_ready(MAIN_REDIS, &prefix, &[]).await;
    let api = s.api();
    let c = api.customer().await;
    let m = api.merchant().await;
    let id = api.placed_order(&c, &m).await;
    let path = format!("/orders/{id}/share-links");
    let make = |privacy: &'static str| {
        let (api, path, token) = (&api, &path, &c.token);
        async move {
            api.post(
                path,
                Some(token),
                &json!({"ttl_s": 600, "privacy": privacy}),
            )
            .await
            .expect(201)
        }
    };
    let (kept, revoked) = (make("status_and_position").await, make("status").await);
    let token = |l: &serde_json::Value| l["token"].as_str().unwrap().to_string();
    let del = format!("{path}/{}", revoked["id"].as_str().unwrap());
    let r = api
        .raw(reqwest::Method::DELETE, &del, Some(&c.token), None, &[])
        .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);

    // Stored with an expiry of its own (an hour after the link's).
    let mut conn = connect(MAIN_REDIS).await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}share:{}", token(&kept)))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        (600_000..=600_000 + 3_600_000).contains(&pttl),
        "PTTL {pttl}"
    );

    s.kill9();
    let s = Server::start_ready(MAIN_REDIS, &prefix, &[]).await;
    let api = s.api();
    let seen = api
        .get(&format!("/shared?token={}", token(&kept)), None)
        .await
        .expect(200);
    assert_eq!(seen["order"]["order_id"], id.as_str());
    assert_eq!(seen["privacy"], "status_and_position");
    let page = reqwest::get(s.url(kept["url"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    api.get(&format!("/shared?token={}", token(&revoked)), None)
        .await
        .expect_error(410, "gone");
    let listed = api.get(&path, Some(&c.token)).await.expect(200);
    assert_eq!(strs(&listed, "id").len(), 2, "{listed}");
    assert!(listed[1]["revoked_ms"].as_u64().is_some(), "{listed}");
    let (mut ws, snap) = api
        .ws_with(&format!("/ws/share?token={}", token(&kept)), "snapshot")
        .await;
    assert_eq!(snap["order"]["status"], "pending_payment");
    ws.close().await;
}
