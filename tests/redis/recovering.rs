//! While a restart reads the engine back from Redis, the API and the sockets answer 503
//! with `Retry-After` — never 401 for a token not read back yet, nor 404 for an order —
//! and answer as before once it is done.

use crate::harness::*;
use std::time::Duration;

#[tokio::test]
async fn until_recovered_the_api_says_not_now_instead_of_unauthorized() {
    let redis = OwnRedis::start();
    let prefix = unique_prefix();
    let s = Server::start_ready(&redis.url(), &prefix, &[]).await;
    let api = s.api();
    let m = api.merchant().await;
    let c = api.customer().await;
    let order_id = api.placed_order(&c, &m).await;
    let (rider_id, rider_token) = api.create_rider().await;
    s.kill9();

    // Redis away: the new process binds, but cannot read its state back yet.
    redis.stop();
    let s = Server::start(&redis.url(), &prefix, &[]);
    let api = s.api();
    assert_eq!(api.get("/healthz", None).await.status.as_u16(), 200);
    assert_eq!(api.get("/readyz", None).await.status.as_u16(), 503);
    let path = format!("/orders/{order_id}");
    let r = reqwest::Client::new()
        .get(s.url(&format!("/api/v1{path}")))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        503,
        "a stored order with its owner's token"
    );
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(retry.as_deref(), Some("1"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    api.get("/riders", Some(api.dispatcher.as_str()))
        .await
        .expect_error(503, "unavailable");
    let refused = api.ws(&format!("/ws/rider?token={rider_token}")).await;
    assert_eq!(refused.err(), Some(503), "the rider socket waits too");

    // Redis back: recovery finishes and the same calls answer as before the restart.
    redis.run();
    s.wait_ready(Duration::from_secs(30)).await;
    let order = api.get(&path, Some(&c.token)).await.expect(200);
    assert_eq!(order["order_id"], order_id.as_str());
    let (_ws, welcome) = api
        .ws_with(&format!("/ws/rider?token={rider_token}"), "welcome")
        .await;
    assert_eq!(welcome["rider_id"], rider_id.as_str());
    // A token that names nobody is still refused as such.
    api.get(&path, Some("no-such-token"))
        .await
        .expect_error(401, "unauthorized");
}
