//! Offers: expiry, declines, racing accepts, withdrawal by assignment, release.

use crate::support::*;

#[actix_rt::test]
async fn an_ignored_offer_expires_and_the_next_nearest_is_offered() {
    let engine = start(cfg());
    let [mut a, mut b, mut c] =
        riders_north(&engine, [("A", 300.0), ("B", 900.0), ("C", 2500.0)]).await;
    let o = dispatched(&engine).await;
    let first = the_offer(&a.take());
    assert!(b.take().is_empty());

    advance(4.8).await;
    assert!(a.take().is_empty(), "not expired before offer_ttl_s");
    assert!(b.take().is_empty());
    assert_eq!(a.view().await.status, RiderStatus::Offered);

    advance(0.4).await;
    let na = a.take();
    assert_eq!(
        closed(&na),
        vec![(first.offer_id.clone(), OfferCloseReason::Expired)]
    );
    assert!(offers(&na).is_empty());
    let second = the_offer(&b.take());
    assert_eq!(second.order_id, o);
    assert_ne!(second.offer_id, first.offer_id);
    assert!(c.take().is_empty(), "one rider at a time");
    assert_eq!(a.view().await.status, RiderStatus::Idle);

    // Accepting the expired offer is refused and changes nothing.
    a.accept(&first);
    settle().await;
    a.assert_offer_refused();
    assert_eq!(status_of(&engine, &o).await, OrderStatus::Accepted);

    b.accept(&second);
    settle().await;
    assert_eq!(assigned(&b.take()).len(), 1);
    assert_eq!(rider_of(&engine, &o).await, Some(b.id.clone()));
}

#[actix_rt::test]
async fn a_decliner_is_never_offered_the_same_order_again() {
    let engine = start(cfg());
    let [mut a, mut b] = riders_north(&engine, [("A", 200.0), ("B", 1500.0)]).await;
    let id = dispatched(&engine).await;

    let first = the_offer(&a.take());
    a.cmd(RiderCommand::Decline {
        offer_id: first.offer_id.clone(),
    });
    settle().await;
    let na = a.take();
    assert!(
        closed(&na).is_empty(),
        "no offer_closed for one's own decline"
    );
    assert!(errors(&na).is_empty(), "{na:?}");
    assert_eq!(a.view().await.status, RiderStatus::Idle);
    assert_eq!(b.offers_for(&id).len(), 1, "next rider offered at once");

    // B lets its offers expire round after round; A, idle and nearest, is never asked.
    advance(31.0).await;
    let b_offers = b.offers_for(&id);
    assert!(
        b_offers.len() >= 3,
        "B is offered again after expiries: {}",
        b_offers.len()
    );
    assert_eq!(
        a.offers_for(&id),
        vec![first.clone()],
        "A only got the first"
    );
    assert_eq!(status_of(&engine, &id).await, OrderStatus::Accepted);

    // A is still a candidate for other orders.
    let other = dispatched(&engine).await;
    assert_eq!(a.offers_for(&other).len(), 1);
}

#[actix_rt::test]
async fn two_racing_accepts_exactly_one_wins() {
    let engine = start_with(|c| c.dispatch.offer_fanout = 2);
    let [mut a, mut b, mut z] =
        riders_north(&engine, [("A", 400.0), ("B", 800.0), ("Z", 1600.0)]).await;
    let id = dispatched(&engine).await;
    let oa = the_offer(&a.take());
    let ob = the_offer(&b.take());
    assert!(z.take().is_empty(), "fanout 2: the third rider waits");
    assert_ne!(oa.offer_id, ob.offer_id);

    // Same tick: both accepts are queued before any actor runs.
    b.accept(&ob);
    a.accept(&oa);
    settle().await;
    let (na, nb) = (a.take(), b.take());
    let (winner, loser, ln) = match (assigned(&na).len(), assigned(&nb).len()) {
        (1, 0) => (&a, &b, &nb),
        (0, 1) => (&b, &a, &na),
        other => panic!("exactly one winner expected, got {other:?}: {na:?} / {nb:?}"),
    };
    let told_taken = closed(ln)
        .iter()
        .any(|(_, r)| *r == OfferCloseReason::Taken);
    let told_unavailable = errors(ln).contains(&"offer_not_available".to_string());
    assert!(told_taken || told_unavailable, "loser told: {ln:?}");
    let o = order(&engine, &id).await;
    assert_eq!(o.status, OrderStatus::Assigned);
    assert_eq!(o.rider_id.as_ref(), Some(&winner.id));
    assert_eq!(o.version, 4, "assigned once");
    assert_eq!(winner.view().await.status, RiderStatus::Busy);
    assert_eq!(loser.view().await.status, RiderStatus::Idle);
    settle().await;
    assert!(z.take().is_empty());
}

#[actix_rt::test]
async fn an_accept_closes_every_other_open_offer_taken() {
    let engine = start_with(|c| c.dispatch.offer_fanout = 3);
    let [mut a, mut b, mut d] =
        riders_north(&engine, [("A", 300.0), ("B", 600.0), ("D", 900.0)]).await;
    let id = dispatched(&engine).await;
    let (oa, ob, od) = (
        the_offer(&a.take()),
        the_offer(&b.take()),
        the_offer(&d.take()),
    );
    b.accept(&ob);
    settle().await;
    assert_eq!(assigned(&b.take()).len(), 1);
    assert_eq!(
        closed(&a.take()),
        vec![(oa.offer_id.clone(), OfferCloseReason::Taken)]
    );
    assert_eq!(
        closed(&d.take()),
        vec![(od.offer_id.clone(), OfferCloseReason::Taken)]
    );
    assert_eq!(a.view().await.status, RiderStatus::Idle);
    // A late accept of a closed offer is refused; a repeated accept answers assigned again.
    d.accept(&od);
    b.accept(&ob);
    settle().await;
    d.assert_offer_refused();
    let again = assigned(&b.take());
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].order_id, id);
    let o = order(&engine, &id).await;
    assert_eq!((o.rider_id.as_ref(), o.version), (Some(&b.id), 4));
}

#[actix_rt::test]
async fn cancelling_an_order_closes_its_open_offer_cancelled() {
    let engine = start(cfg());
    let mut a = TestRider::online_at(&engine, "A", north(300.0)).await;
    let o = dispatched(&engine).await;
    let offer = the_offer(&a.take());
    let done = engine
        .order_command(
            &o,
            OrderCommand::Cancel {
                by: dispatch_actors::domain::order::Actor::Dispatcher,
                reason: Some("customer called".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(done.status, OrderStatus::Cancelled);
    settle().await;
    assert_eq!(
        closed(&a.take()),
        vec![(offer.offer_id, OfferCloseReason::Cancelled)]
    );
    assert_eq!(a.view().await.status, RiderStatus::Idle);
}

/// A rider app that repeats an old accept (say after a reconnect) must not lose the offer
/// it holds now.
#[actix_rt::test]
async fn a_repeated_accept_of_a_finished_order_keeps_the_current_offer() {
    let engine = start(cfg());
    let mut r = TestRider::online_at(&engine, "R", north(300.0)).await;
    let o1 = dispatched(&engine).await;
    let f1 = the_offer(&r.take());
    r.accept(&f1);
    settle().await;
    r.picked_up(&o1).await;
    r.cmd(RiderCommand::Delivered {
        order_id: o1.clone(),
    });
    advance(6.0).await; // o1's actor is gone
    r.take();

    let o2 = dispatched(&engine).await;
    let f2 = the_offer(&r.take());
    assert_eq!(f2.order_id, o2);
    r.accept(&f1);
    settle().await;
    r.assert_offer_refused();
    assert_eq!(
        r.view().await.status,
        RiderStatus::Offered,
        "still holds the offer for o2"
    );
    r.accept(&f2);
    settle().await;
    let got = assigned(&r.take());
    assert_eq!(got.len(), 1, "the current offer can still be accepted");
    assert_eq!(rider_of(&engine, &o2).await, Some(r.id.clone()));
}

#[actix_rt::test]
async fn an_accept_sent_the_moment_the_offer_arrives_wins() {
    let engine = start(cfg());
    let mut r = TestRider::online_at(&engine, "Quick", north(300.0)).await;
    let o = accepted_order(&engine).await;
    // Accept as soon as the offer frame is queued for the rider, before anything else runs.
    let offer = loop {
        tokio::task::yield_now().await;
        if let Some(o) = offers(&r.take()).into_iter().next() {
            break o;
        }
    };
    r.accept(&offer);
    settle().await;
    let got = r.take();
    assert_eq!(assigned(&got).len(), 1, "{got:?}");
    assert!(errors(&got).is_empty(), "{got:?}");
    assert_eq!(
        order(&engine, &o.order_id).await.rider_id,
        Some(r.id.clone())
    );
}

#[actix_rt::test]
async fn a_dispatcher_assignment_withdraws_open_offers() {
    let engine = start(cfg());
    let [mut a, mut b] = riders_north(&engine, [("A", 300.0), ("B", 2500.0)]).await;
    let id = dispatched(&engine).await;
    let offer = the_offer(&a.take());

    let done = engine.assign(&id, &b.id).await.unwrap();
    assert_eq!(done.status, OrderStatus::Assigned);
    assert_eq!(done.rider_id.as_ref(), Some(&b.id));
    settle().await;
    assert_eq!(
        closed(&a.take()),
        vec![(offer.offer_id.clone(), OfferCloseReason::Withdrawn)]
    );
    let got = assigned(&b.take());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].order_id, id);
    assert_eq!(a.view().await.status, RiderStatus::Idle);
    assert_eq!(b.view().await.status, RiderStatus::Busy);

    // The withdrawn offer can no longer be accepted.
    a.accept(&offer);
    settle().await;
    a.assert_offer_refused();
    assert_eq!(rider_of(&engine, &id).await, Some(b.id.clone()));

    // An offline rider, and an online one without a connection, cannot be assigned.
    let offline = engine.create_rider("Off".into()).await.unwrap();
    engine
        .attach_rider(&offline.rider_id, Outbox::new(16))
        .await
        .unwrap();
    let err = engine.assign(&id, &offline.rider_id).await.unwrap_err();
    assert!(matches!(err, EngineError::RiderUnavailable(_)), "{err:?}");
    let gone = TestRider::online_at(&engine, "Gone", north(50.0)).await;
    engine.detach_rider(&gone.id, gone.outbox.clone());
    settle().await;
    let err = engine.assign(&id, &gone.id).await.unwrap_err();
    assert!(matches!(err, EngineError::RiderUnavailable(_)), "{err:?}");
    let err = engine
        .assign(&id, &RiderId::parse("r_nobody").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::RiderUnavailable(_)), "{err:?}");
    let after = order(&engine, &id).await;
    assert_eq!(
        after.rider_id.as_ref(),
        Some(&b.id),
        "refusals change nothing"
    );
    assert_eq!(after.version, done.version);

    // Reassigning to A tells B it was reassigned.
    engine.assign(&id, &a.id).await.unwrap();
    settle().await;
    assert_eq!(
        unassigned(&b.take()),
        vec![(id.clone(), UnassignReason::Reassigned)]
    );
    assert_eq!(assigned(&a.take()).len(), 1);
    assert_eq!(b.view().await.status, RiderStatus::Idle);
}

#[actix_rt::test]
async fn a_released_order_is_dispatched_again_never_to_the_releaser() {
    let engine = start(cfg());
    let [mut a, mut b] = riders_north(&engine, [("A", 200.0), ("B", 1000.0)]).await;
    let id = dispatched(&engine).await;
    let offer = a.take_next().await;

    a.cmd(RiderCommand::Release {
        order_id: id.clone(),
    });
    settle().await;
    assert_eq!(
        unassigned(&a.take()),
        vec![(id.clone(), UnassignReason::Released)]
    );
    let back = order(&engine, &id).await;
    assert_eq!(back.status, OrderStatus::Accepted);
    assert_eq!(back.rider_id, None);
    assert_eq!(a.view().await.status, RiderStatus::Idle);
    assert_eq!(b.offers_for(&id).len(), 1, "offered to someone else");

    // B lets offers expire round after round: A, idle and nearer, is never asked again.
    advance(26.0).await;
    assert!(b.offers_for(&id).len() >= 3);
    assert_eq!(a.offers_for(&id), vec![offer.clone()]);
    // Re-accepting the old, won offer is refused now.
    a.accept(&offer);
    settle().await;
    a.assert_offer_refused();
    assert_eq!(status_of(&engine, &id).await, OrderStatus::Accepted);
}
