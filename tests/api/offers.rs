//! Scenario 3: offers: expiry, decline memory, two accepts racing.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

#[actix_web::test]
async fn an_ignored_offer_expires_and_the_next_rider_gets_one() {
    let (app, c, m) = spawn_shop(|s| s.timers.offer_ttl_s = 1.0).await;
    let mut a = app.rider_at(offset(SHOP, 150.0, 0.0)).await;
    let mut b = app.rider_at(offset(SHOP, 0.0, 900.0)).await;
    let id = app.accepted_order(&c, &m).await;

    let offer = a.expect_offer().await;
    assert_eq!(offer["order_id"], id.as_str());
    let ttl_ms = offer["expires_at_ms"].as_u64().unwrap() as i64 - now_ms() as i64;
    assert!(
        (0..=1500).contains(&ttl_ms),
        "offer ttl {ttl_ms} ms with offer_ttl_s = 1"
    );

    // A ignores it: it closes `expired`; B is offered the order.
    let closed = a.ws.recv_type("offer_closed", T).await;
    assert_eq!(closed["offer_id"], offer["offer_id"]);
    assert_eq!(closed["reason"], "expired");
    let next = b.expect_offer().await;
    assert_eq!(next["order_id"], id.as_str());
    assert_ne!(next["offer_id"], offer["offer_id"]);

    // An accept after expiry is refused and changes nothing.
    a.accept_refused(&offer).await;
    assert_eq!(app.order_state(&id).await["status"], "accepted");

    // B takes it in time.
    let assigned = b.accept(&next).await;
    assert_eq!(assigned["order"]["rider_id"], b.id.as_str());
    let o = app.order_state(&id).await;
    assert_eq!(
        (o["status"].as_str(), o["rider_id"].as_str()),
        (Some("assigned"), Some(b.id.as_str()))
    );
}

#[actix_web::test]
async fn a_rider_who_declined_is_never_offered_that_order_again() {
    let (app, c, m) = spawn_shop(|s| {
        s.timers.offer_ttl_s = 1.0;
        s.dispatch.retry_interval_s = 0.3;
    })
    .await;
    let mut a = app.rider_at(offset(SHOP, 100.0, 0.0)).await;
    let mut b = app.rider_at(offset(SHOP, 0.0, 700.0)).await;
    let id = app.accepted_order(&c, &m).await;

    let offer = a.expect_offer().await;
    a.send(json!({"type": "decline", "offer_id": offer["offer_id"], "reason": "too far"}))
        .await;
    // B is next; B lets it expire, so the engine searches again and again.
    let to_b = b.expect_offer().await;
    assert_eq!(to_b["order_id"], id.as_str());
    b.ws.recv_type("offer_closed", T).await;

    // Several offer periods and retries later, A still has not seen this order again
    // (and was not told `offer_closed` about the offer it declined itself).
    let frames =
        a.ws.expect_none(
            "a second offer to the rider who declined",
            Duration::from_millis(3500),
            |v| {
                (v["type"] == "offer" && v["order_id"] == id.as_str())
                    || v["type"] == "offer_closed"
            },
        )
        .await;
    // B, who only let its offer expire, may be offered it again.
    let again = b.expect_offer().await;
    assert_eq!(again["order_id"], id.as_str());
    assert!(frames.iter().all(|f| f["type"] != "offer"), "{frames:?}");

    // A was offered it once, so A may read it; the trace shows the decisions.
    app.get(&format!("/orders/{id}"), Some(&a.token))
        .await
        .expect(200);
    let trace = app
        .get(&format!("/orders/{id}/trace"), Some(&app.dispatcher))
        .await
        .expect(200);
    assert!(
        !trace["decisions"].as_array().unwrap().is_empty(),
        "{trace}"
    );

    // An accept of the declined offer is refused.
    a.accept_refused(&offer).await;

    // A is still good for other orders.
    let c2 = app.customer().await;
    let m2 = app.merchant_at(offset(SHOP, 50.0, 0.0), 500).await;
    let id2 = app.accepted_order(&c2, &m2).await;
    let other = a.expect_offer().await;
    assert_eq!(other["order_id"], id2.as_str());
}

#[actix_web::test]
async fn two_riders_accepting_at_once_yield_exactly_one_winner() {
    // Several riders holding offers for one order at once is the `nearest` policy's fanout;
    // under `batch` the planner offers each order to one rider (its races: tests/engine).
    let (app, c, m) = spawn_shop(|s| {
        s.dispatch.policy = dispatch_actors::config::Policy::Nearest;
        s.dispatch.offer_fanout = 2;
    })
    .await;
    let mut a = app.rider_at(offset(SHOP, 100.0, 0.0)).await;
    let mut b = app.rider_at(offset(SHOP, -120.0, 0.0)).await;
    let id = app.accepted_order(&c, &m).await;

    let (oa, ob) = tokio::join!(a.expect_offer(), b.expect_offer());
    assert_eq!(oa["order_id"], id.as_str());
    assert_eq!(ob["order_id"], id.as_str());
    assert_ne!(oa["offer_id"], ob["offer_id"]);

    let accept_a = json!({"type": "accept", "offer_id": oa["offer_id"]});
    let accept_b = json!({"type": "accept", "offer_id": ob["offer_id"]});
    tokio::join!(
        a.ws.send_json(accept_a.clone()),
        b.ws.send_json(accept_b.clone())
    );

    let outcome = |v: &Value| {
        v["type"] == "assigned"
            || (v["type"] == "offer_closed" && v["reason"] == "taken")
            || (v["type"] == "error" && v["code"] == "offer_not_available")
    };
    let (ra, rb) = tokio::join!(
        a.ws.recv_until("the outcome of A's accept", T, outcome),
        b.ws.recv_until("the outcome of B's accept", T, outcome)
    );
    let a_won = ra["type"] == "assigned";
    let b_won = rb["type"] == "assigned";
    assert!(a_won ^ b_won, "exactly one winner: A got {ra}, B got {rb}");
    let (winner, loser, loser_offer, winner_accept) = if a_won {
        (&mut a, &mut b, &ob, accept_a)
    } else {
        (&mut b, &mut a, &oa, accept_b)
    };
    let order = app.order_state(&id).await;
    assert_eq!(order["status"], "assigned");
    assert_eq!(order["rider_id"], winner.id.as_str());

    // The loser cannot take it afterwards; the winner's repeat answers `assigned` again.
    loser
        .send(json!({"type": "accept", "offer_id": loser_offer["offer_id"]}))
        .await;
    loser
        .ws
        .recv_until("offer_not_available for the loser", T, |v| {
            v["type"] == "error" && v["code"] == "offer_not_available"
        })
        .await;
    winner.send(winner_accept).await;
    let again = winner.ws.recv_type("assigned", T).await;
    assert_eq!(again["order"]["order_id"], id.as_str());
    let after = app.order_state(&id).await;
    assert_eq!(after["rider_id"], winner.id.as_str());
    assert_eq!(after["version"], order["version"], "repeats change nothing");
}
