//! Revocation is stored: a rider's revoked token stays refused after `kill -9` and a
//! restart, while a token issued after the revocation, and other riders' tokens, work.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stays_revoked_after_kill_9() {
    let (prefix, _cleanup) = fresh_keys();
    let s = Server::start_ready(MAIN_REDIS, &prefix, &[]).await;
    let api = s.api();
    let (id, old) = api.create_rider().await;
    let (kept_id, kept) = api.create_rider().await;
    let path = format!("/riders/{id}/tokens");
    let r = api
        .raw(Method::DELETE, &path, Some(&api.dispatcher), None, &[])
        .await
        .expect(200);
    assert_eq!(r["revoked"], 1);
    let fresh = api
        .post(&path, Some(&api.dispatcher), &json!({}))
        .await
        .expect(201);
    let fresh = fresh["token"].as_str().unwrap().to_string();
    s.kill9();

    let s = Server::start_ready(MAIN_REDIS, &prefix, &[]).await;
    let api = s.api();
    assert_eq!(
        api.ws(&format!("/ws/rider?token={old}")).await.err(),
        Some(401)
    );
    api.get("/riders/nearby?lat=1&lon=1", Some(&old))
        .await
        .expect_error(401, "unauthorized");
    api.rider_socket(&id, &fresh).await;
    api.rider_socket(&kept_id, &kept).await;
}
