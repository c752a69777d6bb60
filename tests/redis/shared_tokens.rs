//! Tokens on several nodes sharing one Redis (docs/cluster.md, "Tokens"): a token or an
//! account made on one node works on another at once, and a revocation made on any node
//! ends the holder's tokens and sockets on every node.

use crate::harness::*;
use reqwest::Method;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_made_on_one_node_work_and_end_on_every_node() {
    let (prefix, _cleanup) = fresh_keys();
    let a = Server::start_ready(MAIN_REDIS, &prefix, &[]).await;
    let on_a = a.api();
    let m = on_a.merchant().await;
    let (rider, first) = on_a.create_rider().await;
    // B starts after these: it reads them back; whatever A makes from now on, B has not
    // seen.
    let b = Server::start_ready(MAIN_REDIS, &prefix, &[]).await;
    let on_b = b.api();

    // A customer signs up on A, logs in on B, and orders on B with A's token.
    let c = on_a.customer().await;
    let login = on_b.login(&c.username, "correct horse").await.expect(200);
    assert_eq!(login["customer_id"], c.id.as_str());
    on_b.login(&c.username, "wrong horse")
        .await
        .expect_error(401, "unauthorized");
    let order = on_b
        .post("/orders", Some(&c.token), &on_b.order_body(&m, 1))
        .await
        .expect(201);
    assert_eq!(order["customer_id"], c.id.as_str());

    // A token A issues opens the rider's socket on B.
    let path = format!("/riders/{rider}/tokens");
    let from_a = on_a
        .post(&path, Some(&on_a.dispatcher), &json!({}))
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut socket_on_b, _) = on_b.rider_socket(&rider, &from_a).await;
    // And one B issues, A has never seen.
    let from_b = on_b
        .post(&path, Some(&on_b.dispatcher), &json!({}))
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();

    // Revoked on A: all three tokens, wherever they were issued.
    let r = on_a
        .raw(Method::DELETE, &path, Some(&on_a.dispatcher), None, &[])
        .await
        .expect(200);
    assert_eq!(r["revoked"], 3, "{r}");
    // B ends the socket it holds, and refuses every token of the rider.
    assert_eq!(socket_on_b.ws.close_code(WAIT).await, CloseCode::Policy);
    for t in [&first, &from_a, &from_b] {
        for api in [&on_a, &on_b] {
            assert_eq!(
                api.ws(&format!("/ws/rider?token={t}")).await.err(),
                Some(401)
            );
        }
    }
    // The customer's token was not touched.
    on_a.get("/riders/nearby?lat=1&lon=1", Some(&c.token))
        .await
        .expect_error(403, "forbidden");
    a.kill9();
    b.kill9();
}

/// A token nobody issued is refused on every node, read from the store or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_token_is_refused() {
    let (prefix, _cleanup) = fresh_keys();
    let a = Server::start_ready(MAIN_REDIS, &prefix, &[]).await;
    let api = a.api();
    api.get("/riders/nearby?lat=1&lon=1", Some("0123456789abcdef"))
        .await
        .expect_error(401, "unauthorized");
    assert_eq!(
        api.ws("/ws/rider?token=0123456789abcdef").await.err(),
        Some(401)
    );
    a.kill9();
}

/// Nodes of a cluster (docs/cluster.md): a dispatcher issues and revokes a rider's tokens
/// through any node, wherever the rider's actor lives; an unknown rider is 404 on each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_of_a_cluster_issues_a_riders_tokens() {
    let (prefix, _cleanup) = fresh_keys();
    let a = Server::start_ready(MAIN_REDIS, &prefix, &crate::nodes::node_env("tok-a")).await;
    let b = Server::start_ready(MAIN_REDIS, &prefix, &crate::nodes::node_env("tok-b")).await;
    let (on_a, on_b) = (a.api(), b.api());
    // Made on A: its actor lives there, no socket anywhere.
    let (rider, _) = on_a.create_rider().await;
    let path = format!("/riders/{rider}/tokens");
    let from_b = on_b
        .post(&path, Some(&on_b.dispatcher), &json!({}))
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut socket, _) = on_b.rider_socket(&rider, &from_b).await;
    let r = on_b
        .raw(Method::DELETE, &path, Some(&on_b.dispatcher), None, &[])
        .await
        .expect(200);
    assert!(r["revoked"].as_u64().unwrap() >= 2, "{r}");
    assert_eq!(socket.ws.close_code(WAIT).await, CloseCode::Policy);
    for api in [&on_a, &on_b] {
        api.post(
            "/riders/r_nobody0000/tokens",
            Some(&api.dispatcher),
            &json!({}),
        )
        .await
        .expect_error(404, "not_found");
    }
    a.kill9();
    b.kill9();
}
