//! Socket caps and the Origin allowlist, checked at the upgrade before the handshake.

use crate::helpers::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Opens `path` sending `Origin: origin`; the refusal's HTTP status if refused.
async fn ws_from(app: &TestApp, path: &str, origin: &str) -> Result<(), u16> {
    let mut req = format!("{}{path}", app.ws_base)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", HeaderValue::from_str(origin).unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("connect failed: {e}"),
    }
}

#[actix_web::test]
async fn browser_origins_are_this_server_by_default_and_the_list_when_set() {
    let app = spawn_app(|_| {}).await;
    let dash = format!("/ws/dispatch?token={}", app.dispatcher);
    // The dashboard page this server serves, and native apps (no Origin).
    let own = app.base.clone();
    assert_eq!(ws_from(&app, &dash, &own).await, Ok(()));
    app.dashboard().await;
    // Any other site: 403, before the token is even looked at.
    assert_eq!(ws_from(&app, &dash, "https://evil.example").await, Err(403));
    assert_eq!(
        ws_from(&app, "/ws/dispatch?token=wrong", "https://evil.example").await,
        Err(403)
    );
    assert_eq!(ws_from(&app, &dash, "null").await, Err(403));

    let listed = spawn_app(|s| {
        s.server.allowed_origins = vec!["https://dispatch.example.com".into()];
    })
    .await;
    let dash = format!("/ws/dispatch?token={}", listed.dispatcher);
    assert_eq!(
        ws_from(&listed, &dash, "https://dispatch.example.com").await,
        Ok(())
    );
    let own = listed.base.clone();
    assert_eq!(ws_from(&listed, &dash, &own).await, Err(403));
}

#[actix_web::test]
async fn sockets_past_the_per_ip_cap_get_429_and_places_come_back() {
    let app = spawn_app(|s| s.server.max_sockets_per_ip = 2).await;
    let (a, _) = app.dashboard().await;
    let (_b, _) = app.dashboard().await;
    let path = format!("/ws/dispatch?token={}", app.dispatcher);
    assert_eq!(app.ws(&path).await.err(), Some(429));
    let mut a = a;
    a.close().await;
    wait_for("a place to come back", T, || async {
        app.ws(&path).await.ok().map(|_| ())
    })
    .await;
}

#[actix_web::test]
async fn a_holder_past_its_socket_cap_gets_429_but_a_rider_reconnecting_replaces() {
    let (app, c, m) = spawn_shop(|s| s.server.max_sockets_per_principal = 2).await;
    let id = app.placed_order(&c, &m).await;
    let (_t1, _) = app.track(&id, &c.token).await;
    let (_t2, _) = app.track(&id, &c.token).await;
    let path = format!("/ws/orders/{id}/track?token={}", c.token);
    assert_eq!(app.ws(&path).await.err(), Some(429));
    // Another holder's places are its own.
    let (_m1, _) = app.merchant_app(&m).await;
    // A rider is never locked out by its own old sockets: each new one replaces the last.
    let mut rider = app.rider_connected().await;
    for _ in 0..3 {
        let (next, _) = app.rider_socket(&rider.id, &rider.token).await;
        rider.ws.wait_closed(T).await;
        rider.ws = next.ws;
    }
}
