//! Token expiry and revocation: an expired or revoked token is refused on REST (401) and
//! at the socket upgrade, and the rider's open socket closes with a close frame saying why.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The close frame's code and reason.
async fn closed_with(ws: &mut WsClient, within: Duration) -> (CloseCode, String) {
    match ws.wait_closed(within).await {
        Ended::Closed(Some(f)) => (f.code, f.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

async fn revoke(app: &TestApp, rider_id: &str, token: &str) -> Resp {
    let path = format!("/riders/{rider_id}/tokens");
    app.raw(Method::DELETE, &path, Some(token), None, &[]).await
}

async fn new_token(app: &TestApp, rider_id: &str) -> String {
    let path = format!("/riders/{rider_id}/tokens");
    let r = app.post(&path, Some(&app.dispatcher), &json!({})).await;
    let body = r.expect(201);
    assert_eq!(body["rider_id"], rider_id);
    assert!(body["expires_ms"].as_u64().unwrap() > now_ms());
    body["token"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn a_revoked_rider_is_refused_everywhere_and_its_socket_closes() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let mut rider = app.rider_at(offset(SHOP, 100.0, 0.0)).await;
    let id = app.accepted_order(&c, &m).await;
    rider.take_order(&id).await;
    let other = app.rider_connected().await;

    // Only the dispatcher revokes; an unknown rider is 404.
    for t in [&c.token, &m.token, &other.token, &rider.token] {
        revoke(&app, &rider.id, t)
            .await
            .expect_error(403, "forbidden");
    }
    revoke(&app, "r_nobody", &app.dispatcher)
        .await
        .expect_error(404, "not_found");
    let r = revoke(&app, &rider.id, &app.dispatcher).await.expect(200);
    assert_eq!(
        (r["revoked"].as_u64(), r["sockets_closed"].as_u64()),
        (Some(1), Some(1))
    );

    let (code, reason) = closed_with(&mut rider.ws, T).await;
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::Policy, "token revoked")
    );
    app.get(&format!("/orders/{id}"), Some(&rider.token))
        .await
        .expect_error(401, "unauthorized");
    assert_eq!(
        app.ws(&format!("/ws/rider?token={}", rider.token))
            .await
            .err(),
        Some(401)
    );
    // Other riders are untouched.
    app.get("/orders/o_nothing", Some(&other.token))
        .await
        .expect(404);

    // A new token reconnects the same rider, still holding its order.
    let fresh = new_token(&app, &rider.id).await;
    let (_again, welcome) = app.rider_socket(&rider.id, &fresh).await;
    assert_eq!(welcome["orders"][0]["order_id"], id.as_str(), "{welcome}");
    app.get(&format!("/orders/{id}"), Some(&fresh))
        .await
        .expect(200);
}

#[actix_web::test]
async fn an_expired_token_is_refused_and_its_socket_closes() {
    let app = spawn_app(|s| s.auth.token_ttl_s = 1.0).await;
    let (rider_id, token) = app.create_rider().await;
    let (mut rider, _) = app.rider_socket(&rider_id, &token).await;
    let customer = app.customer().await;
    app.get("/orders/o_nothing", Some(&customer.token))
        .await
        .expect(404);

    let (code, reason) = closed_with(&mut rider.ws, Duration::from_secs(3)).await;
    assert_eq!(
        (code, reason.as_str()),
        (CloseCode::Policy, "token expired")
    );
    // The customer's token was issued a little later, so it ends a little later.
    let refused = wait_for(
        "the customer's token to expire",
        Duration::from_secs(3),
        || async {
            let r = app.get("/orders/o_nothing", Some(&customer.token)).await;
            (r.status.as_u16() == 401).then_some(r)
        },
    )
    .await;
    refused.expect_error(401, "unauthorized");
    assert_eq!(
        app.ws(&format!("/ws/rider?token={token}")).await.err(),
        Some(401)
    );
    // The customer logs in again; the rider gets a new token from the dispatcher.
    let fresh = app
        .login(&customer.username, "correct horse")
        .await
        .expect(200);
    app.get("/orders/o_nothing", fresh["token"].as_str())
        .await
        .expect(404);
    let t = new_token(&app, &rider_id).await;
    app.rider_socket(&rider_id, &t).await;
    // The dispatcher's configured token does not expire.
    app.get("/riders", Some(&app.dispatcher)).await.expect(200);
}
