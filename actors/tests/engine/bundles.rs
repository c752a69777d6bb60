//! Bundles and next-job offers (docs/protocol.md, "Bundles and next-job offers (v1.1)"):
//! under `dispatch.policy = "batch"` several orders of one merchant go to one rider as one
//! offer, and a busy rider finishing soon may be offered its next job; under `nearest`
//! neither happens.

use crate::support::*;
use dispatch_actors::config::Policy;
use dispatch_actors::domain::order::Actor as By;
use dispatch_actors::domain::{ItemId, MerchantId};
use dispatch_actors::store::{OrderRecord, Snapshot, Store};
use std::sync::Arc;

fn batch() -> EngineConfig {
    let mut c = cfg();
    c.dispatch.policy = Policy::Batch;
    c.dispatch.round_s = 5.0;
    c
}

/// A merchant (prep time 0) at `at` with one item.
async fn shop_at(engine: &Engine, name: &str, at: GeoPoint) -> (MerchantId, ItemId) {
    let m = engine
        .create_merchant(name.into(), at, Some(0))
        .await
        .unwrap();
    let item = engine
        .add_item(&m.merchant_id, "Dumplings".into(), 900)
        .await
        .unwrap();
    (m.merchant_id, item.item_id)
}

/// A paid order at `shop` for delivery to `dropoff`; its id.
async fn paid_at(engine: &Engine, shop: &(MerchantId, ItemId), dropoff: GeoPoint) -> OrderId {
    let o = engine
        .create_order(
            CustomerId::parse("c_bob").unwrap(),
            &shop.0,
            vec![(shop.1.clone(), 1)],
            dropoff,
        )
        .await
        .unwrap();
    engine
        .order_command(
            &o.order_id,
            OrderCommand::Pay {
                payment_ref: format!("pay_{}", o.order_id),
            },
        )
        .await
        .unwrap();
    o.order_id
}

/// The merchant accepts `id` with `prep_s` of cooking ahead.
async fn cook(engine: &Engine, id: &OrderId, prep_s: u64) {
    let o = engine.accept_order(id, Some(prep_s)).await.unwrap();
    assert_eq!(o.status, OrderStatus::Accepted);
}

/// Two paid orders of one merchant at the centre, delivered 1,500 m and 2,500 m east (one
/// route), accepted together with the same prep time: (nearer, farther).
async fn two_orders_one_route(engine: &Engine) -> (OrderId, OrderId) {
    let shop = shop_at(engine, "Dumpling House", centre()).await;
    let near = paid_at(engine, &shop, centre().destination(90.0, 1500.0)).await;
    let far = paid_at(engine, &shop, centre().destination(90.0, 2500.0)).await;
    cook(engine, &near, 30).await;
    cook(engine, &far, 30).await;
    (near, far)
}

/// Advances one second at a time (keeping `rider` and `fresh` heard from) until `rider`
/// is sent an offer; that offer, or None after `limit_s`.
async fn next_offer(rider: &mut TestRider, limit_s: u32, fresh: &[&TestRider]) -> Option<Offer> {
    for _ in 0..=limit_s {
        if let Some(o) = offers(&rider.take()).pop() {
            return Some(o);
        }
        advance_fresh(1.0, fresh).await;
        rider.send_fix();
    }
    None
}

fn ids(o: &Offer) -> Vec<OrderId> {
    o.orders.iter().map(|l| l.order_id.clone()).collect()
}

/// How many offers in `ns` name `order`, in any of their legs.
fn offers_naming(ns: &[RiderNotice], order: &OrderId) -> usize {
    offers(ns)
        .iter()
        .filter(|o| o.order_ids().contains(order))
        .count()
}

/// The rider goes to `p`, slowly enough for the GPS speed check (no fix on the way).
async fn ride_to(rider: &mut TestRider, p: GeoPoint) {
    advance(60.0).await;
    rider.move_to(p);
    settle().await;
}

async fn a_trace_says(engine: &Engine, id: &OrderId, words: &str) -> bool {
    engine
        .trace(id)
        .await
        .unwrap()
        .iter()
        .any(|t| t.event.contains(words))
}

#[actix_rt::test]
async fn two_orders_of_one_merchant_go_to_the_one_rider_as_one_offer_and_accepting_assigns_both() {
    let engine = start(batch());
    let mut r = TestRider::online_at(&engine, "R", north(100.0)).await;
    let (near, far) = two_orders_one_route(&engine).await;

    let offer = next_offer(&mut r, 90, &[]).await.expect("an offer");
    // One frame for both, in drop-off sequence; the top-level fields repeat the first leg.
    assert_eq!(ids(&offer), vec![near.clone(), far.clone()], "{offer:?}");
    assert!(offer.is_bundle());
    assert_eq!(offer.order_id, near);
    assert_eq!(offer.dropoff, offer.orders[0].dropoff);
    assert_eq!(offer.ready_at_ms, offer.orders[0].ready_at_ms);
    assert_eq!(offer.orders[1].dropoff, order(&engine, &far).await.dropoff);
    settle().await;
    r.take();
    assert_eq!(offers(&r.log).len(), 1, "one frame, not one per order");
    let view = r.view().await;
    assert_eq!(view.status, RiderStatus::Offered);
    let held = view.offer.expect("the view shows the bundle");
    assert_eq!(held.order_ids, vec![near.clone(), far.clone()]);
    assert!(!held.next_job);

    r.accept(&offer);
    settle().await;
    let won: Vec<OrderId> = assigned(&r.take())
        .into_iter()
        .map(|o| o.order_id)
        .collect();
    assert_eq!(
        won,
        vec![near.clone(), far.clone()],
        "one assigned each, in sequence"
    );
    for id in [&near, &far] {
        let o = order(&engine, id).await;
        assert_eq!(
            (o.status, o.rider_id.as_ref()),
            (OrderStatus::Assigned, Some(&r.id))
        );
    }
    let view = r.view().await;
    assert_eq!(view.status, RiderStatus::Busy);
    assert_eq!(view.order_ids.len(), 2);
}

/// docs/protocol.md: "a repeated accept of a won offer answers `assigned` again"; a won
/// bundle answers it for every order, as the first accept did.
#[actix_rt::test]
async fn a_repeated_accept_of_a_won_bundle_answers_assigned_for_every_order() {
    let engine = start(batch());
    let mut r = TestRider::online_at(&engine, "R", north(100.0)).await;
    let (near, far) = two_orders_one_route(&engine).await;
    let offer = next_offer(&mut r, 90, &[]).await.expect("an offer");
    assert!(offer.is_bundle(), "{offer:?}");
    r.accept(&offer);
    settle().await;
    assert_eq!(assigned(&r.take()).len(), 2);
    r.accept(&offer);
    settle().await;
    let again = r.take();
    let won: Vec<OrderId> = assigned(&again).into_iter().map(|o| o.order_id).collect();
    assert_eq!(won, vec![near.clone(), far.clone()], "{again:?}");
    assert!(errors(&again).is_empty(), "{again:?}");
    for id in [&near, &far] {
        assert_eq!(rider_of(&engine, id).await.as_ref(), Some(&r.id));
    }
}

/// The same after a restart: the won bundle is rebuilt from the stored orders.
#[actix_rt::test]
async fn a_repeated_accept_of_a_won_bundle_after_a_restart_answers_for_every_order() {
    let store = Arc::new(MemoryStore::new());
    let engine = start_on(batch(), store.clone());
    let mut r = TestRider::online_at(&engine, "R", north(100.0)).await;
    let (near, far) = two_orders_one_route(&engine).await;
    let offer = next_offer(&mut r, 90, &[]).await.expect("an offer");
    assert!(offer.is_bundle(), "{offer:?}");
    r.accept(&offer);
    settle().await;
    assert_eq!(assigned(&r.take()).len(), 2);

    let again = Engine::start(batch(), store.clone(), Clock::starting_at(engine.now_ms()));
    let mut orders = Vec::new();
    for id in [&near, &far] {
        let rec = store.load_order_record(id).await.unwrap().unwrap();
        orders.push(OrderRecord {
            base_version: rec.order.version,
            ..rec
        });
    }
    let snap = Snapshot {
        orders,
        riders: vec![r.view().await],
        ..Snapshot::default()
    };
    let n = again.recover(snap).await;
    assert_eq!((n.orders, n.riders), (2, 1));
    let outbox = Outbox::new(64);
    again.attach_rider(&r.id, outbox.clone()).await.unwrap();
    settle().await;
    outbox.drain();
    again
        .rider_command(
            &r.id,
            RiderCommand::Accept {
                offer_id: offer.offer_id.clone(),
            },
        )
        .unwrap();
    settle().await;
    let answer = outbox.drain();
    let mut won: Vec<OrderId> = assigned(&answer).into_iter().map(|o| o.order_id).collect();
    won.sort();
    let mut want = vec![near, far];
    want.sort();
    assert_eq!(won, want, "{answer:?}");
}

#[actix_rt::test]
async fn a_declined_bundle_is_never_offered_to_that_rider_again_in_any_part() {
    let engine = start(batch());
    let mut first = TestRider::online_at(&engine, "First", north(100.0)).await;
    let (near, far) = two_orders_one_route(&engine).await;
    let offer = next_offer(&mut first, 90, &[]).await.expect("an offer");
    assert!(offer.is_bundle(), "{offer:?}");
    first.cmd(RiderCommand::Decline {
        offer_id: offer.offer_id.clone(),
    });
    settle().await;
    for id in [&near, &far] {
        assert!(
            a_trace_says(&engine, id, "declined").await,
            "{id} remembers"
        );
    }
    // The decliner is the only rider, idle, next to the kitchen: still nothing, for either.
    advance_fresh(60.0, &[&first]).await;
    assert_eq!(first.view().await.status, RiderStatus::Idle);
    // Another rider takes them.
    let mut second = TestRider::online_at(&engine, "Second", north(400.0)).await;
    for _ in 0..60 {
        if let Some(o) = offers(&second.take()).pop() {
            second.accept(&o);
        }
        advance_fresh(1.0, &[&first, &second]).await;
    }
    for id in [&near, &far] {
        assert_eq!(
            rider_of(&engine, id).await.as_ref(),
            Some(&second.id),
            "{id}"
        );
    }
    first.take();
    assert_eq!(offers(&first.log).len(), 1, "only the declined one");
    assert_eq!(offers_naming(&first.log, &near), 1);
    assert_eq!(offers_naming(&first.log, &far), 1);
}

#[actix_rt::test]
async fn cancelling_one_order_of_an_open_bundle_withdraws_it_and_the_other_is_offered_again() {
    let engine = start(batch());
    let mut r = TestRider::online_at(&engine, "R", north(100.0)).await;
    let (near, far) = two_orders_one_route(&engine).await;
    let bundle = next_offer(&mut r, 90, &[]).await.expect("an offer");
    assert_eq!(ids(&bundle), vec![near.clone(), far.clone()]);

    let done = engine
        .order_command(
            &near,
            OrderCommand::Cancel {
                by: By::Dispatcher,
                reason: Some("customer called".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(done.status, OrderStatus::Cancelled);
    // Withdrawn is not a decline: the same rider is offered the rest again.
    let again = next_offer(&mut r, 60, &[]).await.expect("offered again");
    assert_eq!(
        closed(&r.log),
        vec![(bundle.offer_id.clone(), OfferCloseReason::Withdrawn)],
        "told once, withdrawn"
    );
    assert_ne!(again.offer_id, bundle.offer_id);
    assert_eq!(ids(&again), vec![far.clone()], "{again:?}");
    assert_eq!(again.order_id, far);
    r.accept(&again);
    settle().await;
    let won: Vec<OrderId> = assigned(&r.take())
        .into_iter()
        .map(|o| o.order_id)
        .collect();
    assert_eq!(won, vec![far.clone()]);
    assert_eq!(status_of(&engine, &near).await, OrderStatus::Cancelled);
    assert_eq!(r.view().await.order_ids, vec![far]);
}

#[actix_rt::test]
async fn an_expired_bundle_closes_for_all_its_orders() {
    let engine = start(batch());
    let mut r = TestRider::online_at(&engine, "R", north(100.0)).await;
    let (near, far) = two_orders_one_route(&engine).await;
    let bundle = next_offer(&mut r, 90, &[]).await.expect("an offer");
    assert!(bundle.is_bundle());
    advance_fresh(6.0, &[&r]).await; // offer_ttl_s = 5
    assert_eq!(
        closed(&r.take()),
        vec![(bundle.offer_id.clone(), OfferCloseReason::Expired)]
    );
    r.accept(&bundle);
    settle().await;
    r.assert_offer_refused();
    for id in [&near, &far] {
        let o = order(&engine, id).await;
        assert_eq!(
            (o.status, o.rider_id),
            (OrderStatus::Accepted, None),
            "{id}"
        );
        assert!(a_trace_says(&engine, id, "expired").await, "{id}");
    }
    assert_eq!(r.view().await.status, RiderStatus::Idle);
}

#[actix_rt::test]
async fn with_a_rider_per_order_nobody_gets_a_bundle() {
    // Bundles are sized by supply: at most ceil(2 orders / 2 riders) = 1 order each.
    let engine = start(batch());
    let mut a = TestRider::online_at(&engine, "A", north(100.0)).await;
    let mut b = TestRider::online_at(&engine, "B", north(150.0)).await;
    let (near, far) = two_orders_one_route(&engine).await;
    let oa = next_offer(&mut a, 90, &[&b]).await.expect("A is offered");
    let ob = next_offer(&mut b, 5, &[&a]).await.expect("B is offered");
    assert_eq!((oa.orders.len(), ob.orders.len()), (1, 1));
    let mut both = vec![oa.order_id, ob.order_id];
    both.sort();
    let mut want = vec![near, far];
    want.sort();
    assert_eq!(both, want);
}

#[actix_rt::test]
async fn max_bundle_one_makes_single_offers_even_for_one_rider() {
    let engine = start_with(|c| {
        c.dispatch.policy = Policy::Batch;
        c.dispatch.round_s = 5.0;
        c.dispatch.max_bundle = 1;
    });
    let mut r = TestRider::online_at(&engine, "R", north(100.0)).await;
    let _ = two_orders_one_route(&engine).await;
    let o = next_offer(&mut r, 90, &[]).await.expect("an offer");
    assert_eq!(o.orders.len(), 1, "{o:?}");
}

/// A busy rider is offered its next job only once every order in hand is picked up and
/// its drop-offs end within `dispatch.next_job_s` (300 s at 5 m/s: 1,500 m).
#[actix_rt::test]
async fn a_busy_rider_finishing_soon_is_offered_its_next_job_and_stays_busy() {
    let engine = start(batch());
    let mut r = TestRider::online_at(&engine, "R", north(100.0)).await;
    let first_shop = shop_at(&engine, "First", centre()).await;
    let a_drop = centre().destination(90.0, 2000.0);
    let a = paid_at(&engine, &first_shop, a_drop).await;
    cook(&engine, &a, 0).await;
    let offer = next_offer(&mut r, 30, &[]).await.expect("A is offered");
    assert_eq!(ids(&offer), vec![a.clone()]);
    r.accept(&offer);
    settle().await;
    assert_eq!(assigned(&r.take()).len(), 1);

    // The next job: a kitchen 300 m from A's drop-off.
    let second_shop = shop_at(&engine, "Second", a_drop.destination(0.0, 300.0)).await;
    let b = paid_at(&engine, &second_shop, a_drop.destination(0.0, 1300.0)).await;
    cook(&engine, &b, 0).await;

    // A not picked up yet: nothing, even standing by A's drop-off and B's kitchen.
    let by_the_door = a_drop.destination(0.0, 100.0);
    ride_to(&mut r, by_the_door).await;
    advance_fresh(30.0, &[&r]).await;
    assert_eq!(offers_naming(&r.take(), &b), 0, "A still assigned");

    // A picked up, but its drop-off 2,000 m (400 s) away: nothing.
    ride_to(&mut r, centre()).await;
    r.picked_up(&a).await;
    assert_eq!(status_of(&engine, &a).await, OrderStatus::PickedUp);
    advance_fresh(30.0, &[&r]).await;
    assert_eq!(offers_naming(&r.take(), &b), 0, "drop-off too far");

    // 100 m from the door: B is offered while A is in hand, and the rider stays busy.
    ride_to(&mut r, by_the_door).await;
    let mut events = engine.subscribe();
    let next = next_offer(&mut r, 30, &[]).await.expect("the next job");
    assert_eq!(ids(&next), vec![b.clone()]);
    let view = r.view().await;
    assert_eq!(view.status, RiderStatus::Busy);
    // The dashboard sees the next-job offer: on the rider's view, and as a change of it
    // although the status stayed `busy`.
    let held = view.offer.expect("the view shows the offer");
    assert_eq!((held.order_ids, held.next_job), (vec![b.clone()], true));
    let mut published = false;
    while let Ok(e) = events.try_recv() {
        if let Event::RiderChanged { rider } = e {
            published |= rider.rider_id == r.id
                && rider
                    .offer
                    .as_ref()
                    .is_some_and(|o| o.offer_id == next.offer_id);
        }
    }
    assert!(published, "a rider change carrying the next-job offer");
    r.accept(&next);
    settle().await;
    let won: Vec<OrderId> = assigned(&r.take())
        .into_iter()
        .map(|o| o.order_id)
        .collect();
    assert_eq!(won, vec![b.clone()]);
    let view = r.view().await;
    assert_eq!(view.status, RiderStatus::Busy);
    assert_eq!(view.order_ids, vec![a.clone(), b.clone()]);
    assert_eq!(status_of(&engine, &a).await, OrderStatus::PickedUp);
    assert_eq!(status_of(&engine, &b).await, OrderStatus::Assigned);
}

/// `nearest`: one order per offer, and a busy rider is never offered, however soon it is
/// done; once free it is.
#[actix_rt::test]
async fn under_nearest_offers_carry_one_order_and_busy_riders_get_none() {
    let engine = start(cfg());
    let mut r = TestRider::online_at(&engine, "R", north(100.0)).await;
    let (near, far) = two_orders_one_route(&engine).await;
    let first = next_offer(&mut r, 30, &[]).await.expect("an offer");
    assert_eq!(first.orders.len(), 1, "{first:?}");
    assert_eq!(first.orders[0].order_id, first.order_id);
    let held = first.order_id.clone();
    let other = if held == near {
        far.clone()
    } else {
        near.clone()
    };
    r.accept(&first);
    settle().await;
    assert_eq!(assigned(&r.take()).len(), 1);

    // Picked up and 100 m from the door (20 s of work left), the kitchen 1,500 m or more
    // away: in reach, and would be a next job under `batch`.
    r.picked_up(&held).await;
    let door = order(&engine, &held).await.dropoff;
    ride_to(&mut r, door.destination(270.0, 100.0)).await;
    advance_fresh(60.0, &[&r]).await;
    assert_eq!(offers_naming(&r.take(), &other), 0, "busy: no offer");
    assert_eq!(r.view().await.status, RiderStatus::Busy);

    r.delivered(&held).await;
    let then = next_offer(&mut r, 60, &[])
        .await
        .expect("offered once free");
    assert_eq!(ids(&then), vec![other]);
    assert!(offers(&r.log).iter().all(|o| o.orders.len() == 1));
}
