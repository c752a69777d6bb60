//! Scenario 10: operations endpoints, the dispatcher's dashboard socket, the rider rate
//! limit and idle clients. Scenario 11: graceful shutdown.

use crate::helpers::*;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[actix_web::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app(|_| {}).await;
    app.get("/healthz", None).await.expect(200);
    app.get("/readyz", None).await.expect(200);

    // Make each counter move: a fix, an order, an offer.
    let (c, m) = (app.customer().await, app.merchant().await);
    let mut r = app.rider_at(offset(SHOP, 100.0, 0.0)).await;
    app.accepted_order(&c, &m).await;
    r.expect_offer().await;

    let resp = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain"), "{ct}");
    let text = resp.text().await.unwrap();
    for name in [
        "dispatch_gps_fixes_total",
        "dispatch_orders_total",
        "dispatch_offers_total",
    ] {
        // Every series with known labels is there from the start at zero: sum them.
        let total: f64 = text
            .lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert!(total >= 1.0, "{name} did not move:\n{text}");
    }
    // Engine metrics follow the naming rules.
    for l in text.lines().filter(|l| l.starts_with("# TYPE dispatch_")) {
        let mut parts = l.split_whitespace().skip(2);
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        if kind == "counter" {
            assert!(
                name.ends_with("_total"),
                "counter {name} should end in _total"
            );
        }
    }
}

#[actix_web::test]
async fn the_ops_listener_serves_probes_and_the_scrape_and_nothing_else() {
    let app = spawn_app(|s| s.server.ops_bind = "127.0.0.1:0".into()).await;
    let ops = app.ops_base.clone().expect("an ops listener");
    let get = |path: &str| app.client.get(format!("{ops}{path}")).send();
    assert_eq!(get("/healthz").await.unwrap().status().as_u16(), 200);
    assert_eq!(get("/readyz").await.unwrap().status().as_u16(), 200);
    let scrape = get("/metrics").await.unwrap();
    assert_eq!(scrape.status().as_u16(), 200);
    assert!(scrape
        .text()
        .await
        .unwrap()
        .contains("dispatch_gps_fixes_total"));
    // The API and the sockets are on the main port only.
    let api = get("/api/v1/riders").await.unwrap();
    assert_eq!(api.status().as_u16(), 404);
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    // The main port still answers the probes too.
    app.get("/healthz", None).await.expect(200);
    // Without ops_bind there is no second listener.
    assert!(spawn_app(|_| {}).await.ops_base.is_none());
}

#[actix_web::test]
async fn the_dashboard_gets_a_snapshot_then_batched_updates() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let mut r = app.rider_at(offset(SHOP, 300.0, 0.0)).await;
    let idle = app.rider_connected().await;
    let pending = app.placed_order(&c, &m).await;
    let done = app.placed_order(&c, &m).await;
    app.order_call(&done, "cancel", &c.token, json!({}))
        .await
        .expect(200);

    let (mut ws, snap) = app.dashboard().await;
    assert_eq!(snap["type"], "snapshot");
    let rider_ids = strs(&snap["riders"], "rider_id");
    assert!(
        rider_ids.contains(&r.id.as_str()) && rider_ids.contains(&idle.id.as_str()),
        "{rider_ids:?}"
    );
    let order_ids = strs(&snap["orders"], "order_id");
    assert_eq!(order_ids, [pending.as_str()], "live orders only");
    assert!(snap["escalations"].is_array());
    // Let changes from before the snapshot flush out.
    ws.expect_none("nothing", Duration::from_millis(250), |_| false)
        .await;

    // The rider moves: an update carries it with its new position.
    let p = offset(SHOP, 250.0, 0.0);
    r.move_to(p).await;
    let up = ws
        .recv_until("updates with the moved rider", T, |v| {
            v["type"] == "updates"
                && v["riders"].as_array().is_some_and(|rs| {
                    rs.iter().any(|x| {
                        x["rider_id"] == r.id.as_str()
                            && x["location"]["lat"]
                                .as_f64()
                                .is_some_and(|lat| (lat - p.0).abs() < 1e-9)
                    })
                })
        })
        .await;
    for k in ["riders", "orders", "escalations"] {
        assert!(up[k].is_array(), "{k} in {up}");
    }
    // Only what changed: the idle rider that did nothing is not in it.
    assert!(
        !up["riders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["rider_id"] == idle.id.as_str()),
        "{up}"
    );

    // An order reaching a final state is sent once more.
    app.order_call(&pending, "cancel", &c.token, json!({}))
        .await
        .expect(200);
    let fin = ws
        .recv_until("the cancelled order", T, |v| {
            v["type"] == "updates"
                && v["orders"].as_array().is_some_and(|os| {
                    os.iter()
                        .any(|o| o["order_id"] == pending.as_str() && o["status"] == "cancelled")
                })
        })
        .await;
    assert_eq!(fin["type"], "updates");

    // Batching: several fixes inside one interval arrive as few updates, not one each.
    let start = ws.seen.len();
    for i in 0..5 {
        r.move_to(offset(SHOP, 240.0 - i as f64 * 5.0, 0.0)).await;
    }
    let last = r.pos.unwrap();
    ws.recv_until("the last position", T, |v| {
        v["riders"].as_array().is_some_and(|rs| {
            rs.iter().any(|x| {
                x["location"]["lat"]
                    .as_f64()
                    .is_some_and(|lat| (lat - last.0).abs() < 1e-9)
            })
        })
    })
    .await;
    let updates = ws.seen[start..]
        .iter()
        .filter(|v| v["type"] == "updates")
        .count();
    assert!(updates < 5, "5 fixes within 100 ms gave {updates} updates");
}

#[actix_web::test]
async fn a_burst_of_fixes_beyond_the_limit_is_rate_limited() {
    let app = spawn_app(|_| {}).await;
    let mut r = app.rider_connected().await;
    r.online().await;
    // The default allows 10 fixes per 10 s with bursts of 20.
    for i in 0..30 {
        r.move_to(offset(SHOP, i as f64, 0.0)).await;
    }
    let err =
        r.ws.recv_until("rate_limited", T, |v| {
            v["type"] == "error" && v["code"] == "rate_limited"
        })
        .await;
    assert!(err["message"].is_string());
    // The socket stays open.
    r.send(json!({"type": "bogus"})).await;
    assert_eq!(
        r.ws.recv_until("invalid_message", T, |v| v["type"] == "error"
            && v["code"] != "rate_limited")
            .await["code"],
        "invalid_message"
    );
}

#[actix_web::test]
async fn draining_turns_readyz_503_and_closes_open_sockets() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let id = app.placed_order(&c, &m).await;
    let mut rider = app.rider_at(offset(SHOP, 100.0, 0.0)).await;
    let (mut track, _) = app.track(&id, &c.token).await;
    let (mut merchant, _) = app.merchant_app(&m).await;
    let (mut dash, _) = app.dashboard().await;
    app.get("/readyz", None).await.expect(200);

    dispatchd::startup::drain(&app.state);

    let r = app.get("/readyz", None).await;
    r.expect_error(503, "unavailable");
    app.get("/healthz", None).await.expect(200);
    for (name, ws) in [
        ("track", &mut track),
        ("merchant", &mut merchant),
        ("dispatch", &mut dash),
        ("rider", &mut rider.ws),
    ] {
        let code = ws.close_code(T).await;
        assert_eq!(code, CloseCode::Away, "{name} socket closed with {code:?}");
    }
}

/// Opens a rider socket by hand and never writes a byte (so not even a pong), then
/// reads until the server hangs up; returns the close code it sent, if any.
async fn silent_rider_socket(app: &TestApp, token: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "GET /ws/rider?token={token} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(T, tcp.read_to_end(&mut bytes))
        .await
        .expect("the server hangs up on a silent client")
        .unwrap();
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer")
        + 4;
    assert!(
        bytes.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&bytes[..head_end])
    );
    // Server frames are not masked: opcode, length (7 bits, or 16/64-bit extended), payload.
    let mut rest = &bytes[head_end..];
    while rest.len() >= 2 {
        let opcode = rest[0] & 0x0f;
        let (len, skip) = match rest[1] & 0x7f {
            126 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let payload = &rest[skip..skip + len];
        if opcode == 8 {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
        rest = &rest[skip + len..];
    }
    None
}

#[actix_web::test]
async fn a_client_that_stops_answering_is_closed_and_one_that_answers_stays() {
    let app = spawn_app(|s| {
        s.server.heartbeat_interval_s = 0.2;
        s.server.client_timeout_s = 0.8;
    })
    .await;
    let mut lively = app.rider_connected().await;
    let (_, silent_token) = app.create_rider().await;
    // `lively` keeps reading, so its client answers pings; the other never answers.
    let (frames, code) = tokio::join!(
        lively
            .ws
            .expect_none("a close", Duration::from_millis(1600), |_| false),
        silent_rider_socket(&app, &silent_token)
    );
    assert_eq!(code, Some(1000), "the silent client is closed normally");
    assert!(frames.is_empty(), "{frames:?}");
    // `lively` is still served.
    lively.ws.send_text("{}".into()).await;
    assert_eq!(
        lively.ws.recv_type("error", T).await["code"],
        "invalid_message"
    );
}
