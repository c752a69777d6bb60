//! Accept criterion 1: everything survives `kill -9` and a restart.

use crate::harness::*;
use crate::support::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Orders in every state, open offers, riders holding orders and a pending timer survive
/// `kill -9`; a timer due during the downtime fires right after start; an idempotent
/// retry after the restart returns the original response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_restores_everything() {
    let (prefix, _cleanup) = fresh_keys();
    let env = [
        ("DISPATCH_TIMERS__MERCHANT_ACCEPT_S", "4"),
        ("DISPATCH_TIMERS__OFFER_TTL_S", "60"),
        ("DISPATCH_TIMERS__RIDER_SILENT_S", "600"),
        ("DISPATCH_TIMERS__RIDER_LOST_S", "1200"),
    ];
    let s = Server::start_ready(MAIN_REDIS, &prefix, &env).await;
    let api = s.api();
    let (m, c) = (api.merchant().await, api.customer().await);
    let near = offset(SHOP, 200.0, 0.0);

    // Rider 1 delivers one order, then holds another (assigned).
    let mut r1 = api.rider_at(near).await;
    let delivered = api.accepted_order(&c, &m).await;
    take_next(&mut r1, &delivered).await;
    report(&mut r1, "picked_up", &delivered).await;
    report(&mut r1, "delivered", &delivered).await;
    let assigned = api.accepted_order(&c, &m).await;
    take_next(&mut r1, &assigned).await;
    // Rider 2 holds a picked-up order.
    let mut r2 = api.rider_at(near).await;
    let picked = api.accepted_order(&c, &m).await;
    take_next(&mut r2, &picked).await;
    report(&mut r2, "picked_up", &picked).await;
    // Rider 3 holds an open offer it does not answer.
    let mut r3 = api.rider_at(near).await;
    let offered = api.accepted_order(&c, &m).await;
    let open_offer = r3.ws.recv_type("offer", WAIT).await;
    assert_eq!(open_offer["order_id"], offered.as_str());
    // Pending payment, cancelled, and (idempotently created) pending.
    let pending = api.placed_order(&c, &m).await;
    let cancelled = api.placed_order(&c, &m).await;
    api.order_call(&cancelled, "cancel", &c.token, json!({}))
        .await
        .expect(200);
    let idem = api
        .post_with_key("/orders", &c.token, "kill-9-key", &api.order_body(&m, 2))
        .await;
    assert_eq!(idem.status.as_u16(), 201);
    // Paid last: its merchant_accept timer (4 s) falls due while the server is down (and
    // the order is cancelled at 2x, 8 s: well after the checks below).
    let paid = api.placed_order(&c, &m).await;
    let paid_at = Instant::now();
    api.pay(&c, &paid).await;

    let all = [
        &delivered, &assigned, &picked, &offered, &pending, &cancelled, &paid,
    ];
    let mut before = Vec::new();
    for id in all {
        before.push(api.order_state(id).await);
    }
    let statuses: Vec<&str> = before
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "delivered",
            "assigned",
            "picked_up",
            "accepted",
            "pending_payment",
            "cancelled",
            "paid"
        ]
    );
    // Background writes (offers, rider views) are batched: let the last ones land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    check_stored_deadlines_and_events(&prefix, &before[6], &delivered, &open_offer).await;
    let [(r1_id, r1_token), (r2_id, r2_token), (r3_id, r3_token)] =
        [r1, r2, r3].map(|r| (r.id.clone(), r.token.clone()));
    s.kill9();

    // Down until the paid order's merchant_accept deadline has passed.
    tokio::time::sleep(Duration::from_millis(4300).saturating_sub(paid_at.elapsed())).await;
    let s = Server::start_ready(MAIN_REDIS, &prefix, &env).await;
    let api = s.api();
    let ready_at = Instant::now();

    for (id, old) in all.iter().zip(&before) {
        let path = format!("/orders/{id}");
        let now = api.get(&path, Some(&c.token)).await.expect(200);
        for k in [
            "status",
            "version",
            "rider_id",
            "total_cents",
            "ready_at_ms",
            "timeline",
        ] {
            assert_eq!(now[k], old[k], "{k} of {id} after restart");
        }
    }
    // The timer that fell due during the downtime fires right after start.
    let esc = loop {
        let list = api.escalations("?open=true").await;
        if let Some(e) = list
            .iter()
            .find(|e| e["kind"] == "merchant_unresponsive" && e["order_id"] == paid.as_str())
        {
            break e.clone();
        }
        assert!(
            ready_at.elapsed() < Duration::from_secs(2),
            "merchant_unresponsive not raised: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(esc["level"], 1);
    // Riders reconnect with their old tokens and are welcomed with what they hold.
    let (mut a1, w1) = api.rider_socket(&r1_id, &r1_token).await;
    assert_eq!(w1["status"], "busy", "{w1}");
    assert_eq!(w1["orders"].as_array().unwrap().len(), 1, "{w1}");
    assert_eq!(w1["orders"][0]["order_id"], assigned.as_str());
    assert_eq!(w1["orders"][0]["status"], "assigned");
    let (_a2, w2) = api.rider_socket(&r2_id, &r2_token).await;
    assert_eq!(w2["orders"][0]["order_id"], picked.as_str());
    assert_eq!(w2["orders"][0]["status"], "picked_up");
    let (_a3, w3) = api.rider_socket(&r3_id, &r3_token).await;
    assert_eq!(w3["status"], "offered", "{w3}");
    assert_eq!(w3["offer"]["offer_id"], open_offer["offer_id"], "{w3}");
    assert_eq!(w3["offer"]["expires_at_ms"], open_offer["expires_at_ms"]);
    // The idempotent retry replays the original response.
    let retry = api
        .post_with_key("/orders", &c.token, "kill-9-key", &api.order_body(&m, 2))
        .await;
    assert_eq!(retry.status.as_u16(), 201);
    assert_eq!(retry.text, idem.text);
    // The restored order moves on: the rider picks it up.
    let upd = report(&mut a1, "picked_up", &assigned).await;
    assert_eq!(upd["order"]["status"], "picked_up");
    assert_eq!(
        upd["order"]["version"].as_u64().unwrap(),
        before[1]["version"].as_u64().unwrap() + 1
    );
    // The merchant's token survived too.
    api.set_open(&m, true).await.expect(200);
    s.kill9();
}

/// What the first server left in Redis: deadlines in a sorted set by due time, events in
/// a stream read by consumer groups.
async fn check_stored_deadlines_and_events(
    prefix: &str,
    paid: &Value,
    delivered: &str,
    open_offer: &Value,
) {
    let mut conn = connect(MAIN_REDIS).await;
    let timers = format!("{prefix}timers");
    let order_id = paid["order_id"].as_str().unwrap();
    let due = zscore(
        &mut conn,
        timers.clone(),
        format!("{order_id}|merchant_accept"),
    )
    .await;
    let paid_ms = paid["timeline"][1]["at_ms"].as_u64().unwrap();
    assert_eq!(
        due,
        Some(paid_ms + 4000),
        "merchant_accept deadline in the timers zset"
    );
    let offer_timer = format!(
        "{}|offer_ttl:{}",
        open_offer["order_id"].as_str().unwrap(),
        open_offer["offer_id"].as_str().unwrap()
    );
    let offer_due = zscore(&mut conn, timers.clone(), offer_timer).await;
    assert_eq!(offer_due, open_offer["expires_at_ms"].as_u64());
    let gone = zscore(&mut conn, timers, format!("{delivered}|delivery_timeout")).await;
    assert_eq!(gone, None, "a final order keeps no deadline");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(format!("{prefix}events"))
        .arg("test-group")
        .arg("0")
        .query_async(&mut conn)
        .await
        .unwrap();
    let read: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("test-group")
        .arg("c1")
        .arg("COUNT")
        .arg(1000)
        .arg("STREAMS")
        .arg(format!("{prefix}events"))
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    let text = format!("{read:?}");
    for kind in [
        "order_changed",
        "offer_sent",
        "offer_closed",
        "rider_changed",
        "merchant_changed",
    ] {
        assert!(text.contains(kind), "no {kind} in the event stream");
    }
}
