//! Dispatch end to end: the happy path, who is offered first, the trace of each search, finished orders.

use crate::support::*;

#[actix_rt::test]
async fn happy_path_offers_the_nearest_rider_and_delivers() {
    let engine = start(cfg());
    let [mut far, mut near] = riders_north(&engine, [("Far", 2000.0), ("Near", 500.0)]).await;
    let mut mid = TestRider::online_at(&engine, "Mid", centre().destination(180.0, 1000.0)).await;

    let id = dispatched(&engine).await;

    let offer = the_offer(&near.take());
    assert_eq!(offer.order_id, id);
    assert!(
        (offer.distance_m - 500.0).abs() <= 1.0,
        "{}",
        offer.distance_m
    );
    let ttl_ms = offer.expires_at_ms - offer_sent_ms(&engine, &id).await;
    assert!((4_900..=5_000).contains(&ttl_ms), "{ttl_ms}");
    assert!(
        offers(&far.take()).is_empty(),
        "only the nearest is offered"
    );
    assert!(
        offers(&mid.take()).is_empty(),
        "only the nearest is offered"
    );
    assert_eq!(near.view().await.status, RiderStatus::Offered);

    near.accept(&offer);
    settle().await;
    let got = assigned(&near.take());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].order_id, id);
    let o = order(&engine, &id).await;
    assert_eq!(o.status, OrderStatus::Assigned);
    assert_eq!(o.rider_id.as_ref(), Some(&near.id));
    // The rider's last fix travels with the accept: an ETA from the first moment.
    let eta = o.eta_s.expect("eta as soon as the order is assigned");
    assert!((495..=505).contains(&eta), "eta {eta}");
    let v = near.view().await;
    assert_eq!(v.status, RiderStatus::Busy);
    assert_eq!(v.order_ids, vec![id.clone()]);

    // With a fix: 500 m to the shop and 2 km on at 5 m/s, food already ready.
    advance(3.0).await;
    near.send_fix();
    settle().await;
    let eta = order(&engine, &id).await.eta_s.expect("eta while assigned");
    assert!((495..=505).contains(&eta), "eta {eta}");
    near.picked_up(&id).await;
    let up = updated(&near.take());
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].status, OrderStatus::PickedUp);
    assert!(up[0].ready, "a pickup marks the food ready");

    advance(7.0).await;
    near.delivered(&id).await;
    let up = updated(&near.take());
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].status, OrderStatus::Delivered);
    assert_eq!(near.view().await.status, RiderStatus::Idle);
    assert!(near.view().await.order_ids.is_empty());

    // The actor lingers 5 s, then stops; the final record stays readable.
    advance(6.0).await;
    assert!(
        !engine.live_orders().await.iter().any(|l| l.order_id == id),
        "the order's actor stopped"
    );
    let done = order(&engine, &id).await;
    assert_eq!(done.status, OrderStatus::Delivered);
    assert_eq!(done.rider_id.as_ref(), Some(&near.id));
    // created 1 → paid 2 → accepted 3 → assigned 4 → picked_up 5 → delivered 6
    assert_eq!(done.version, 6);
    let statuses: Vec<OrderStatus> = done.timeline.iter().map(|e| e.status).collect();
    let lifecycle = "[PendingPayment, Paid, Accepted, Assigned, PickedUp, Delivered]";
    assert_eq!(format!("{statuses:?}"), lifecycle);
    let at: Vec<u64> = done.timeline.iter().map(|e| e.at_ms).collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
    assert!(at[4] >= at[3] + 3_000 && at[5] >= at[4] + 7_000, "{at:?}");
    assert_eq!(done.eta_s, None);
    // A late message about the finished order changes nothing.
    assert!(matches!(
        engine
            .order_command(&id, OrderCommand::MarkReady)
            .await
            .unwrap_err(),
        EngineError::InvalidTransition(_)
    ));
    assert!(far.take().is_empty() && mid.take().is_empty());
}

/// When the order's (only) offer was sent, from the trace.
async fn offer_sent_ms(engine: &Engine, id: &OrderId) -> u64 {
    engine
        .trace(id)
        .await
        .unwrap()
        .iter()
        .find(|t| t.event.starts_with("offered"))
        .expect("an offer in the trace")
        .at_ms
}

#[actix_rt::test]
async fn the_trace_records_candidates_and_why_riders_were_skipped() {
    let engine = start(cfg());
    let [mut a, mut b, c] =
        riders_north(&engine, [("A", 300.0), ("B", 800.0), ("C", 1500.0)]).await;
    let id = dispatched(&engine).await;
    let offer = the_offer(&a.take());
    a.cmd(RiderCommand::Decline {
        offer_id: offer.offer_id.clone(),
    });
    settle().await;
    assert_eq!(b.offers_for(&id).len(), 1);
    advance(5.5).await; // B lets it expire; C is offered

    let trace = engine.trace(&id).await.unwrap();
    let events: Vec<&str> = trace.iter().map(|t| t.event.as_str()).collect();
    // The first search saw all three, nearest first, with distance and travel time.
    let first = &trace[0];
    let ids: Vec<&RiderId> = first.candidates.iter().map(|c| &c.rider_id).collect();
    assert_eq!(ids, vec![&a.id, &b.id, &c.id], "{events:?}");
    assert!(first.candidates.iter().all(|c| c.decision == "candidate"));
    let d: Vec<f64> = first.candidates.iter().map(|c| c.distance_m).collect();
    assert!(
        (d[0] - 300.0).abs() <= 1.0 && (d[2] - 1500.0).abs() <= 1.0,
        "{d:?}"
    );
    assert!(
        (first.candidates[0].travel_s - 60.0).abs() <= 1.0,
        "300 m at 5 m/s"
    );
    assert_eq!(first.radius_m, 3000.0);

    let offered_to = |r: &RiderId| {
        trace.iter().any(|t| {
            t.candidates
                .iter()
                .any(|c| &c.rider_id == r && c.decision == "offered")
        })
    };
    assert!(offered_to(&a.id) && offered_to(&b.id) && offered_to(&c.id));
    let find = |needle: &str| trace.iter().any(|t| t.event.contains(needle));
    assert!(find(&format!("{} declined", a.id)), "{events:?}");
    assert!(find(&format!("to {} expired", b.id)), "{events:?}");

    // Searches after the decline name the skipped riders and the reason.
    let skipped_later: Vec<_> = trace
        .iter()
        .filter(|t| t.event.starts_with("search"))
        .skip(1)
        .flat_map(|t| t.skipped.iter())
        .collect();
    assert!(
        skipped_later
            .iter()
            .any(|s| s.rider_id == a.id && s.reason == "declined"),
        "{trace:#?}"
    );
    assert!(
        skipped_later
            .iter()
            .any(|s| s.rider_id == b.id && s.reason == "offer_expired"),
        "{trace:#?}"
    );
    // No later search lists A as a candidate.
    let after_decline = trace
        .iter()
        .position(|t| t.event == format!("{} declined {}", a.id, offer.offer_id))
        .unwrap();
    assert!(after_decline > 0);
    assert!(
        trace[after_decline..]
            .iter()
            .all(|t| t.candidates.iter().all(|c| c.rider_id != a.id)),
        "{trace:#?}"
    );
}

#[actix_rt::test]
async fn when_riders_are_short_the_longest_waiting_order_gets_the_next_one() {
    let engine = start(cfg());
    // Nobody is online: both orders wait, retrying every 2 s on their own clocks
    // (A at 2, 4, …, 12 s; B at 3, 5, …, 11 s).
    let a = accepted_order(&engine).await;
    advance(1.0).await;
    let b = accepted_order(&engine).await;
    advance(9.5).await;
    // A rider comes free at 10.5 s. B's retry comes first (11 s), but A has waited longer.
    let mut r = TestRider::online_at(&engine, "Free", north(300.0)).await;
    advance(2.0).await;
    let got = offers(&r.take());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].order_id, a.order_id,
        "the older order is served first"
    );
    r.accept(&got[0]);
    settle().await;
    assert_eq!(status_of(&engine, &a.order_id).await, OrderStatus::Assigned);
    assert_eq!(status_of(&engine, &b.order_id).await, OrderStatus::Accepted);
    // The next rider to come free goes to B.
    let mut r2 = TestRider::online_at(&engine, "Next", north(600.0)).await;
    advance(2.5).await;
    let got = offers(&r2.take());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].order_id, b.order_id);
}

/// A waiting order is owed one rider, not every rider in its reach: when riders come free
/// together, the orders behind the oldest are offered the others at their own next retry
/// instead of one order per retry (the chaos run's backlog that never drained).
#[actix_rt::test]
async fn riders_who_come_free_together_serve_as_many_waiting_orders_at_once() {
    let engine = start(cfg());
    // Nobody is online: all three wait, retrying every 2 s on their own clocks
    // (A at 2, 4, 6, 8 s; B at 3, 5, 7 s; C at 3.5, 5.5, 7.5 s).
    let a = accepted_order(&engine).await;
    advance(1.0).await;
    let b = accepted_order(&engine).await;
    advance(0.5).await;
    let c = accepted_order(&engine).await;
    advance(4.7).await;
    // Three riders come free at 6.2 s, just after A's retry.
    let [mut near, mut mid, mut far] =
        riders_north(&engine, [("Near", 300.0), ("Mid", 600.0), ("Far", 900.0)]).await;
    advance(1.5).await;
    // B and C retried (7 and 7.5 s); A did not yet, and the rider nearest it is kept for it.
    assert!(offers(&near.take()).is_empty(), "held for the oldest order");
    let to_b = the_offer(&mid.take());
    let to_c = the_offer(&far.take());
    assert_eq!(to_b.order_id, b.order_id);
    assert_eq!(to_c.order_id, c.order_id);
    advance(0.5).await;
    assert_eq!(the_offer(&near.take()).order_id, a.order_id);
}

#[actix_rt::test]
async fn creating_an_order_under_an_existing_id_returns_that_order() {
    let engine = start(cfg());
    let (m, item) = merchant(&engine).await;
    let id = OrderId::derived_from("c_alice:key-1");
    let alice = CustomerId::parse("c_alice").unwrap();
    let drop = centre().destination(90.0, 2000.0);
    let first = engine
        .create_order_as(
            id.clone(),
            alice.clone(),
            &m.merchant_id,
            vec![(item.clone(), 1)],
            drop,
        )
        .await
        .unwrap();
    assert_eq!(first.order_id, id);
    let again = engine
        .create_order_as(
            id.clone(),
            alice,
            &m.merchant_id,
            vec![(item.clone(), 3)],
            drop,
        )
        .await
        .unwrap();
    assert_eq!(again, first, "no second order, no change");
    assert_eq!(engine.live_orders().await.len(), 1);
    let bob = CustomerId::parse("c_bob").unwrap();
    let err = engine
        .create_order_as(id, bob, &m.merchant_id, vec![(item, 1)], drop)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    assert_eq!(engine.live_orders().await.len(), 1);
}

#[actix_rt::test]
async fn a_finished_order_keeps_its_trace_and_who_was_offered_it() {
    let engine = start(cfg());
    let [mut r, stranger] = riders_north(&engine, [("Ann", 300.0), ("Far away", 90_000.0)]).await;
    let id = dispatched(&engine).await;
    let offer = the_offer(&r.take());
    assert!(engine.was_offered(&id, &r.id).await.unwrap());
    assert!(!engine.was_offered(&id, &stranger.id).await.unwrap());
    r.accept(&offer);
    settle().await;
    r.picked_up(&id).await;
    r.delivered(&id).await;
    let live_trace = engine.trace(&id).await.unwrap();
    advance(6.0).await;
    assert!(
        !engine.live_orders().await.iter().any(|l| l.order_id == id),
        "the order's actor stopped"
    );
    let stored = engine.trace(&id).await.unwrap();
    assert!(!stored.is_empty());
    assert_eq!(stored, live_trace, "the trace outlives the actor");
    assert!(stored.iter().any(|e| e.event.contains("accepted")));
    assert!(engine.was_offered(&id, &r.id).await.unwrap());
    assert!(!engine.was_offered(&id, &stranger.id).await.unwrap());
}
