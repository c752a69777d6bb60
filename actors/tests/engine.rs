//! Engine scenarios, driven through the `Engine` facade with no HTTP in front, under
//! tokio's paused clock: every timer runs in virtual time, nothing really sleeps.
//!
//! Riders are driven the way a rider session drives them (`rider_command`) and their
//! outbox is read back to see exactly what the rider app would have been told.

use dispatch_actors::domain::escalation::{Escalation, EscalationKind, ResolvedBy};
use dispatch_actors::domain::gps::RawFix;
use dispatch_actors::domain::merchant::Merchant;
use dispatch_actors::domain::offers::{Offer, OfferCloseReason};
use dispatch_actors::domain::order::{Order, OrderCommand, OrderStatus};
use dispatch_actors::domain::rider::RiderStatus;
use dispatch_actors::domain::{CustomerId, GeoPoint, OrderId, RiderId};
use dispatch_actors::events::Event;
use dispatch_actors::outbox::Outbox;
use dispatch_actors::protocol::{RiderCommand, RiderNotice, UnassignReason};
use dispatch_actors::store::MemoryStore;
use dispatch_actors::{Clock, Engine, EngineConfig, EngineError};
use std::sync::Arc;
use std::time::Duration;

const T0_MS: u64 = 1_700_000_000_000;

// ---------------------------------------------------------------- helpers

/// Short offer TTL; every timer a test does not exercise is far away, so it cannot
/// interfere. Tests shorten the one they are about.
fn cfg() -> EngineConfig {
    let mut cfg = EngineConfig::for_tests();
    cfg.timers.offer_ttl_s = 5.0;
    cfg.timers.merchant_accept_s = 3600.0;
    cfg.timers.dispatch_remind_s = 3600.0;
    cfg.timers.pickup_late_s = 3600.0;
    cfg.timers.delivery_timeout_s = 3600.0;
    cfg.timers.rider_silent_s = 3600.0;
    cfg.timers.rider_lost_s = 7200.0;
    cfg
}

fn start(cfg: EngineConfig) -> Engine {
    tokio::time::pause();
    Engine::start(cfg, Arc::new(MemoryStore::new()), Clock::starting_at(T0_MS))
}

fn centre() -> GeoPoint {
    GeoPoint::new(31.23, 121.47).unwrap()
}

/// `m` metres north of the city centre (where the merchant is).
fn north(m: f64) -> GeoPoint {
    centre().destination(0.0, m)
}

fn fix_at(p: GeoPoint, ts_ms: u64) -> RawFix {
    RawFix {
        lat: Some(p.lat()),
        lon: Some(p.lon()),
        ts_ms: Some(ts_ms as f64),
        ..Default::default()
    }
}

/// Lets the actors process what is queued (a few virtual milliseconds).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Advances virtual time by `secs`, in steps of at most one second.
async fn advance(secs: f64) {
    advance_fresh(secs, &[]).await
}

/// Advances virtual time by `secs` while the riders in `fresh` keep sending a fix (at
/// their position) every second, so they never turn stale.
async fn advance_fresh(secs: f64, fresh: &[&TestRider]) {
    let mut left = secs;
    while left > 1e-9 {
        let step = left.min(1.0);
        tokio::time::sleep(Duration::from_secs_f64(step)).await;
        left -= step;
        for r in fresh {
            r.send_fix();
        }
    }
}

struct TestRider {
    engine: Engine,
    id: RiderId,
    at: GeoPoint,
    outbox: Outbox<RiderNotice>,
    /// Every notice read so far.
    log: Vec<RiderNotice>,
}

impl TestRider {
    /// Creates a rider, connects it, sets it online and sends one fix at `at`.
    async fn online_at(engine: &Engine, name: &str, at: GeoPoint) -> TestRider {
        let view = engine.create_rider(name.into()).await.unwrap();
        let outbox = Outbox::new(256);
        engine
            .attach_rider(&view.rider_id, outbox.clone())
            .await
            .unwrap();
        let mut r = TestRider {
            engine: engine.clone(),
            id: view.rider_id,
            at,
            outbox,
            log: Vec::new(),
        };
        r.cmd(RiderCommand::SetOnline(true));
        r.send_fix();
        settle().await;
        let first = r.take();
        assert!(
            matches!(first.first(), Some(RiderNotice::Welcome { .. })),
            "first frame is welcome: {first:?}"
        );
        assert_eq!(r.view().await.status, RiderStatus::Idle);
        r
    }

    fn cmd(&self, c: RiderCommand) {
        self.engine.rider_command(&self.id, c).unwrap();
    }

    fn send_fix(&self) {
        self.cmd(RiderCommand::Location(fix_at(
            self.at,
            self.engine.now_ms(),
        )));
    }

    /// Notices that arrived since the last call (also kept in `log`).
    fn take(&mut self) -> Vec<RiderNotice> {
        let new = self.outbox.drain();
        self.log.extend(new.iter().cloned());
        new
    }

    /// All offers this rider was ever sent for `order`.
    fn offers_for(&mut self, order: &OrderId) -> Vec<Offer> {
        self.take();
        offers(&self.log)
            .into_iter()
            .filter(|o| &o.order_id == order)
            .collect()
    }

    async fn view(&self) -> dispatch_actors::domain::rider::RiderView {
        self.engine.rider(&self.id).await.unwrap()
    }

    /// Takes the one offer this rider was sent, accepts it and lets the engine settle.
    async fn accept_next(&mut self) -> Offer {
        let offer = the_offer(&self.take());
        self.accept(&offer);
        settle().await;
        offer
    }

    fn accept(&self, offer: &Offer) {
        self.cmd(RiderCommand::Accept {
            offer_id: offer.offer_id.clone(),
        });
    }
}

fn offers(ns: &[RiderNotice]) -> Vec<Offer> {
    ns.iter()
        .filter_map(|n| match n {
            RiderNotice::Offer(o) => Some(o.clone()),
            _ => None,
        })
        .collect()
}

fn the_offer(ns: &[RiderNotice]) -> Offer {
    let o = offers(ns);
    assert_eq!(o.len(), 1, "expected exactly one offer in {ns:?}");
    o[0].clone()
}

fn closed(ns: &[RiderNotice]) -> Vec<(dispatch_actors::domain::OfferId, OfferCloseReason)> {
    ns.iter()
        .filter_map(|n| match n {
            RiderNotice::OfferClosed { offer_id, reason } => Some((offer_id.clone(), *reason)),
            _ => None,
        })
        .collect()
}

fn errors(ns: &[RiderNotice]) -> Vec<String> {
    ns.iter()
        .filter_map(|n| match n {
            RiderNotice::Error { code, .. } => Some(code.clone()),
            _ => None,
        })
        .collect()
}

fn assigned(ns: &[RiderNotice]) -> Vec<Order> {
    ns.iter()
        .filter_map(|n| match n {
            RiderNotice::Assigned { order } => Some(order.clone()),
            _ => None,
        })
        .collect()
}

fn updated(ns: &[RiderNotice]) -> Vec<Order> {
    ns.iter()
        .filter_map(|n| match n {
            RiderNotice::OrderUpdated { order } => Some(order.clone()),
            _ => None,
        })
        .collect()
}

fn unassigned(ns: &[RiderNotice]) -> Vec<(OrderId, UnassignReason)> {
    ns.iter()
        .filter_map(|n| match n {
            RiderNotice::Unassigned { order_id, reason } => Some((order_id.clone(), *reason)),
            _ => None,
        })
        .collect()
}

fn reminders(ns: &[RiderNotice]) -> usize {
    ns.iter()
        .filter(|n| matches!(n, RiderNotice::Reminder { .. }))
        .count()
}

/// A merchant at the city centre with prep time 0 (food ready at accept), one item.
async fn merchant(engine: &Engine) -> (Merchant, dispatch_actors::domain::ItemId) {
    let m = engine
        .create_merchant("Noodle Bar".into(), centre(), Some(0))
        .await
        .unwrap();
    let item = engine
        .add_item(&m.merchant_id, "Noodles".into(), 1250)
        .await
        .unwrap();
    (m, item.item_id)
}

/// A new paid order at a merchant of its own.
async fn paid_order(engine: &Engine) -> Order {
    let (m, item) = merchant(engine).await;
    let o = engine
        .create_order(
            CustomerId::parse("c_alice").unwrap(),
            &m.merchant_id,
            vec![(item, 2)],
            centre().destination(90.0, 2000.0),
        )
        .await
        .unwrap();
    assert_eq!(o.total_cents, 2500);
    let o = engine
        .order_command(
            &o.order_id,
            OrderCommand::Pay {
                payment_ref: "pay_1".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(o.status, OrderStatus::Paid);
    o
}

/// A paid order the merchant accepted (prep 0): dispatch starts.
async fn accepted_order(engine: &Engine) -> Order {
    let o = paid_order(engine).await;
    let o = engine.accept_order(&o.order_id, Some(0)).await.unwrap();
    assert_eq!(o.status, OrderStatus::Accepted);
    o
}

async fn order(engine: &Engine, id: &OrderId) -> Order {
    engine.order(id).await.unwrap()
}

async fn escalations_of(engine: &Engine, kind: EscalationKind) -> Vec<Escalation> {
    engine
        .escalations(false)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

/// The one escalation of `kind` (asserting there is exactly one).
async fn the_escalation(engine: &Engine, kind: EscalationKind) -> Escalation {
    let all = escalations_of(engine, kind).await;
    assert_eq!(all.len(), 1, "one {kind:?} escalation expected: {all:?}");
    all[0].clone()
}

// ---------------------------------------------------------------- 1. happy path

#[actix_rt::test]
async fn happy_path_offers_the_nearest_rider_and_delivers() {
    let engine = start(cfg());
    let mut far = TestRider::online_at(&engine, "Far", north(2000.0)).await;
    let mut near = TestRider::online_at(&engine, "Near", north(500.0)).await;
    let mut mid = TestRider::online_at(&engine, "Mid", centre().destination(180.0, 1000.0)).await;

    let o = accepted_order(&engine).await;
    let id = o.order_id.clone();
    settle().await;

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
    near.cmd(RiderCommand::PickedUp {
        order_id: id.clone(),
    });
    settle().await;
    let up = updated(&near.take());
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].status, OrderStatus::PickedUp);
    assert!(up[0].ready, "a pickup marks the food ready");

    advance(7.0).await;
    near.cmd(RiderCommand::Delivered {
        order_id: id.clone(),
    });
    settle().await;
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
    assert_eq!(
        statuses,
        vec![
            OrderStatus::PendingPayment,
            OrderStatus::Paid,
            OrderStatus::Accepted,
            OrderStatus::Assigned,
            OrderStatus::PickedUp,
            OrderStatus::Delivered,
        ]
    );
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

// ---------------------------------------------------------------- 2. expiry

#[actix_rt::test]
async fn an_ignored_offer_expires_and_the_next_nearest_is_offered() {
    let engine = start(cfg());
    let mut a = TestRider::online_at(&engine, "A", north(300.0)).await;
    let mut b = TestRider::online_at(&engine, "B", north(900.0)).await;
    let mut c = TestRider::online_at(&engine, "C", north(2500.0)).await;
    let o = accepted_order(&engine).await;
    settle().await;
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
    assert_eq!(second.order_id, o.order_id);
    assert_ne!(second.offer_id, first.offer_id);
    assert!(c.take().is_empty(), "one rider at a time");
    assert_eq!(a.view().await.status, RiderStatus::Idle);

    // Accepting the expired offer is refused and changes nothing.
    a.accept(&first);
    settle().await;
    assert_eq!(errors(&a.take()), vec!["offer_not_available".to_string()]);
    assert_eq!(
        order(&engine, &o.order_id).await.status,
        OrderStatus::Accepted
    );

    b.accept(&second);
    settle().await;
    assert_eq!(assigned(&b.take()).len(), 1);
    assert_eq!(
        order(&engine, &o.order_id).await.rider_id.as_ref(),
        Some(&b.id)
    );
}

// ---------------------------------------------------------------- 3. decline

#[actix_rt::test]
async fn a_decliner_is_never_offered_the_same_order_again() {
    let engine = start(cfg());
    let mut a = TestRider::online_at(&engine, "A", north(200.0)).await;
    let mut b = TestRider::online_at(&engine, "B", north(1500.0)).await;
    let o = accepted_order(&engine).await;
    let id = o.order_id.clone();
    settle().await;

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
    assert_eq!(order(&engine, &id).await.status, OrderStatus::Accepted);

    // A is still a candidate for other orders.
    let other = accepted_order(&engine).await;
    settle().await;
    assert_eq!(a.offers_for(&other.order_id).len(), 1);
}

// ---------------------------------------------------------------- 4. accept race

#[actix_rt::test]
async fn two_racing_accepts_exactly_one_wins() {
    let mut c = cfg();
    c.dispatch.offer_fanout = 2;
    let engine = start(c);
    let mut a = TestRider::online_at(&engine, "A", north(400.0)).await;
    let mut b = TestRider::online_at(&engine, "B", north(800.0)).await;
    let mut z = TestRider::online_at(&engine, "Z", north(1600.0)).await;
    let o = accepted_order(&engine).await;
    settle().await;
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
    let o = order(&engine, &o.order_id).await;
    assert_eq!(o.status, OrderStatus::Assigned);
    assert_eq!(o.rider_id.as_ref(), Some(&winner.id));
    assert_eq!(o.version, 4, "assigned once");
    assert_eq!(winner.view().await.status, RiderStatus::Busy);
    assert_eq!(loser.view().await.status, RiderStatus::Idle);
    settle().await;
    assert!(z.take().is_empty());
}

// ---------------------------------------------------------------- 5. silent rider

#[actix_rt::test]
async fn a_silent_rider_turns_stale_then_loses_its_order() {
    let mut c = cfg();
    c.timers.rider_silent_s = 10.0;
    c.timers.rider_lost_s = 20.0;
    let engine = start(c);
    let mut a = TestRider::online_at(&engine, "A", north(300.0)).await;
    let mut b = TestRider::online_at(&engine, "B", north(1200.0)).await;
    let o = accepted_order(&engine).await;
    let id = o.order_id.clone();
    settle().await;
    a.accept_next().await;
    assert_eq!(assigned(&a.take()).len(), 1);

    // A sends nothing more; B keeps reporting.
    advance_fresh(9.0, &[&b]).await;
    assert_eq!(a.view().await.status, RiderStatus::Busy);
    assert!(escalations_of(&engine, EscalationKind::RiderSilent)
        .await
        .is_empty());

    advance_fresh(2.0, &[&b]).await;
    assert_eq!(a.view().await.status, RiderStatus::Stale);
    assert_eq!(b.view().await.status, RiderStatus::Idle, "B is fresh");
    let silent = the_escalation(&engine, EscalationKind::RiderSilent).await;
    assert!(silent.is_open());
    assert_eq!(silent.rider_id.as_ref(), Some(&a.id));
    assert_eq!(silent.order_id.as_ref(), Some(&id));
    // Still A's order until rider_lost_s.
    let held = order(&engine, &id).await;
    assert_eq!(held.status, OrderStatus::Assigned);
    assert_eq!(held.rider_id.as_ref(), Some(&a.id));
    assert!(b.offers_for(&id).is_empty());

    advance_fresh(8.0, &[&b]).await;
    assert_eq!(order(&engine, &id).await.rider_id.as_ref(), Some(&a.id));
    advance_fresh(2.0, &[&b]).await;
    assert_eq!(
        unassigned(&a.take()),
        vec![(id.clone(), UnassignReason::RiderLost)]
    );
    let back = order(&engine, &id).await;
    assert_eq!(back.status, OrderStatus::Accepted);
    assert_eq!(back.rider_id, None);
    let offer_b = b.offers_for(&id);
    assert_eq!(offer_b.len(), 1, "dispatched again to B");
    assert!(a.view().await.order_ids.is_empty());

    b.accept(&offer_b[0]);
    settle().await;
    assert_eq!(assigned(&b.take()).len(), 1);
    assert_eq!(order(&engine, &id).await.rider_id.as_ref(), Some(&b.id));

    // A is heard again: the rider_silent escalation resolves by itself.
    assert!(
        the_escalation(&engine, EscalationKind::RiderSilent)
            .await
            .is_open(),
        "open while A is silent"
    );
    a.send_fix();
    settle().await;
    let silent = the_escalation(&engine, EscalationKind::RiderSilent).await;
    assert!(!silent.is_open());
    assert_eq!(silent.resolved_by, Some(ResolvedBy::System));
    assert_eq!(a.view().await.status, RiderStatus::Idle);
    assert_eq!(
        a.offers_for(&id).len(),
        1,
        "A is not offered its lost order again"
    );
}

// ---------------------------------------------------------------- 6. merchant accept

#[actix_rt::test]
async fn an_unresponsive_merchant_is_escalated_then_the_order_cancelled() {
    let mut c = cfg();
    c.timers.merchant_accept_s = 10.0;
    let engine = start(c);
    let mut events = engine.subscribe();
    let o = paid_order(&engine).await;
    let id = o.order_id.clone();

    advance(9.8).await;
    assert!(
        escalations_of(&engine, EscalationKind::MerchantUnresponsive)
            .await
            .is_empty()
    );

    advance(0.4).await;
    let e = the_escalation(&engine, EscalationKind::MerchantUnresponsive).await;
    assert!(e.is_open());
    assert_eq!(e.level, 1);
    assert_eq!(e.order_id.as_ref(), Some(&id));
    assert_eq!(order(&engine, &id).await.status, OrderStatus::Paid);
    let mut reminded = false;
    while let Ok(ev) = events.try_recv() {
        if let Event::MerchantReminded { order_id, .. } = ev {
            reminded |= order_id == id;
        }
    }
    assert!(reminded, "the merchant is reminded");

    advance(9.4).await;
    assert_eq!(order(&engine, &id).await.status, OrderStatus::Paid);
    assert!(
        the_escalation(&engine, EscalationKind::MerchantUnresponsive)
            .await
            .is_open()
    );

    advance(0.6).await;
    let o = order(&engine, &id).await;
    assert_eq!(o.status, OrderStatus::Cancelled);
    assert!(o.reason.is_some());
    let e = the_escalation(&engine, EscalationKind::MerchantUnresponsive).await;
    assert!(!e.is_open());
    assert_eq!(e.level, 1);
    assert_eq!(e.resolved_by, Some(ResolvedBy::System));
    // The merchant can no longer accept it.
    assert!(matches!(
        engine.accept_order(&id, Some(0)).await.unwrap_err(),
        EngineError::InvalidTransition(_)
    ));
}

#[actix_rt::test]
async fn a_merchant_accept_resolves_the_unresponsive_escalation() {
    let mut c = cfg();
    c.timers.merchant_accept_s = 10.0;
    let engine = start(c);
    let o = paid_order(&engine).await;
    advance(10.5).await;
    assert!(
        the_escalation(&engine, EscalationKind::MerchantUnresponsive)
            .await
            .is_open()
    );
    engine.accept_order(&o.order_id, Some(0)).await.unwrap();
    settle().await;
    let e = the_escalation(&engine, EscalationKind::MerchantUnresponsive).await;
    assert_eq!(e.resolved_by, Some(ResolvedBy::System));
    advance(15.0).await;
    assert_eq!(
        order(&engine, &o.order_id).await.status,
        OrderStatus::Accepted,
        "not cancelled once accepted"
    );
}

// ---------------------------------------------------------------- 7. no rider

#[actix_rt::test]
async fn no_rider_escalates_and_raises_its_level_until_assigned() {
    let mut c = cfg();
    c.timers.dispatch_remind_s = 10.0;
    let engine = start(c);
    let o = accepted_order(&engine).await;
    let id = o.order_id.clone();

    advance(9.8).await;
    assert!(escalations_of(&engine, EscalationKind::NoRider)
        .await
        .is_empty());
    advance(0.4).await;
    let e1 = the_escalation(&engine, EscalationKind::NoRider).await;
    assert_eq!(e1.level, 1);
    assert!(e1.is_open());
    assert_eq!(e1.order_id.as_ref(), Some(&id));

    advance(9.6).await;
    assert_eq!(
        the_escalation(&engine, EscalationKind::NoRider).await.level,
        1
    );
    advance(0.4).await;
    let e2 = the_escalation(&engine, EscalationKind::NoRider).await;
    assert_eq!(e2.escalation_id, e1.escalation_id, "raised, not reopened");
    assert_eq!(e2.level, 2);
    assert!(e2.is_open());

    // A rider appears near the merchant: offered within a retry interval, accepts.
    let mut r = TestRider::online_at(&engine, "Late", north(700.0)).await;
    advance(2.5).await;
    let offer = the_offer(&r.take());
    assert_eq!(offer.order_id, id);
    assert!(the_escalation(&engine, EscalationKind::NoRider)
        .await
        .is_open());
    r.accept(&offer);
    settle().await;
    assert_eq!(assigned(&r.take()).len(), 1);
    let e = the_escalation(&engine, EscalationKind::NoRider).await;
    assert!(!e.is_open());
    assert_eq!(e.level, 2);
    assert_eq!(e.resolved_by, Some(ResolvedBy::System));
}

// ---------------------------------------------------------------- 8. late pickup, delivery

#[actix_rt::test]
async fn late_pickup_and_late_delivery_escalate_and_resolve() {
    let mut c = cfg();
    c.timers.pickup_late_s = 10.0;
    c.timers.delivery_timeout_s = 15.0;
    let engine = start(c);
    let mut r = TestRider::online_at(&engine, "R", north(600.0)).await;
    let o = accepted_order(&engine).await;
    let id = o.order_id.clone();
    settle().await;
    r.accept_next().await;
    assert_eq!(assigned(&r.take()).len(), 1);

    // pickup_late: counted from assignment (food was ready at accept).
    advance(9.7).await;
    assert!(escalations_of(&engine, EscalationKind::PickupLate)
        .await
        .is_empty());
    assert_eq!(reminders(&r.take()), 0);
    advance(0.4).await;
    let p1 = the_escalation(&engine, EscalationKind::PickupLate).await;
    assert_eq!((p1.level, p1.is_open()), (1, true));
    assert_eq!(p1.order_id.as_ref(), Some(&id));
    assert_eq!(p1.rider_id.as_ref(), Some(&r.id));
    assert_eq!(reminders(&r.take()), 1, "the rider is reminded");
    advance(10.0).await;
    let p2 = the_escalation(&engine, EscalationKind::PickupLate).await;
    assert_eq!(p2.escalation_id, p1.escalation_id);
    assert_eq!(p2.level, 2);
    assert_eq!(reminders(&r.take()), 1);

    r.cmd(RiderCommand::PickedUp {
        order_id: id.clone(),
    });
    settle().await;
    assert_eq!(updated(&r.take())[0].status, OrderStatus::PickedUp);
    let p = the_escalation(&engine, EscalationKind::PickupLate).await;
    assert_eq!(p.resolved_by, Some(ResolvedBy::System));
    assert_eq!(p.level, 2);

    // delivery_timeout: counted from pickup.
    advance(14.7).await;
    assert!(escalations_of(&engine, EscalationKind::DeliveryLate)
        .await
        .is_empty());
    advance(0.4).await;
    let d1 = the_escalation(&engine, EscalationKind::DeliveryLate).await;
    assert_eq!((d1.level, d1.is_open()), (1, true));
    assert_eq!(reminders(&r.take()), 1);
    advance(15.0).await;
    let d2 = the_escalation(&engine, EscalationKind::DeliveryLate).await;
    assert_eq!(d2.escalation_id, d1.escalation_id);
    assert_eq!(d2.level, 2);
    // pickup_late stayed resolved, and was not raised again.
    assert_eq!(
        the_escalation(&engine, EscalationKind::PickupLate)
            .await
            .level,
        2
    );

    r.cmd(RiderCommand::Delivered {
        order_id: id.clone(),
    });
    settle().await;
    assert_eq!(updated(&r.take())[0].status, OrderStatus::Delivered);
    let d = the_escalation(&engine, EscalationKind::DeliveryLate).await;
    assert_eq!(d.resolved_by, Some(ResolvedBy::System));
    assert!(engine.escalations(true).await.unwrap().is_empty());
    advance(40.0).await;
    assert!(
        engine.escalations(true).await.unwrap().is_empty(),
        "no timer outlives the order"
    );
}

// ---------------------------------------------------------------- 9. GPS validation

#[actix_rt::test]
async fn invalid_fixes_are_refused_and_leave_the_position_unchanged() {
    let mut c = cfg();
    c.gps.max_speed_mps = 70.0;
    let engine = start(c);
    let start_at = north(100.0);
    let mut r = TestRider::online_at(&engine, "R", start_at).await;
    let first = r.view().await;
    assert_eq!(first.location, Some(start_at));
    let seen = first.last_seen_ms.unwrap();

    advance(1.0).await;
    let now = engine.now_ms();
    let good = |p: GeoPoint| fix_at(p, now);
    let bad = [
        (
            "NaN",
            RawFix {
                lat: Some(f64::NAN),
                ..good(start_at)
            },
        ),
        (
            "lat 91",
            RawFix {
                lat: Some(91.0),
                ..good(start_at)
            },
        ),
        (
            "lon missing",
            RawFix {
                lon: None,
                ..good(start_at)
            },
        ),
        (
            "ts missing",
            RawFix {
                ts_ms: None,
                ..good(start_at)
            },
        ),
        (
            "infinite lon",
            RawFix {
                lon: Some(f64::INFINITY),
                ..good(start_at)
            },
        ),
        ("31 s in the future", fix_at(start_at, now + 31_000)),
        // 10 km in one second
        ("teleport", good(start_at.destination(45.0, 10_000.0))),
    ];
    for (what, raw) in bad {
        r.cmd(RiderCommand::Location(raw));
        settle().await;
        let n = r.take();
        assert_eq!(
            errors(&n),
            vec!["invalid_location".to_string()],
            "{what}: {n:?}"
        );
        let v = r.view().await;
        assert_eq!(v.location, Some(start_at), "{what} moved the rider");
        assert_eq!(v.last_seen_ms, Some(seen), "{what} counted as heard");
    }

    // Older than the last accepted fix: ignored without a word.
    r.cmd(RiderCommand::Location(fix_at(north(120.0), seen - 1_000)));
    settle().await;
    assert!(r.take().is_empty(), "an old fix is ignored silently");
    assert_eq!(r.view().await.location, Some(start_at));

    // A plausible fix (50 m in ~1 s) is stored: the checks above could have failed.
    let next = start_at.destination(90.0, 50.0);
    r.cmd(RiderCommand::Location(fix_at(next, engine.now_ms())));
    settle().await;
    assert!(r.take().is_empty());
    let v = r.view().await;
    assert_eq!(v.location, Some(next));
    assert!(v.last_seen_ms.unwrap() > seen);
    // 29 s ahead is within the allowed clock skew.
    r.cmd(RiderCommand::Location(fix_at(
        next,
        engine.now_ms() + 29_000,
    )));
    settle().await;
    assert!(errors(&r.take()).is_empty());
}

// ---------------------------------------------------------------- 10. manual assign

#[actix_rt::test]
async fn a_dispatcher_assignment_withdraws_open_offers() {
    let engine = start(cfg());
    let mut a = TestRider::online_at(&engine, "A", north(300.0)).await;
    let mut b = TestRider::online_at(&engine, "B", north(2500.0)).await;
    let o = accepted_order(&engine).await;
    let id = o.order_id.clone();
    settle().await;
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
    assert_eq!(errors(&a.take()), vec!["offer_not_available".to_string()]);
    assert_eq!(order(&engine, &id).await.rider_id.as_ref(), Some(&b.id));

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

// ---------------------------------------------------------------- 11. release

#[actix_rt::test]
async fn a_released_order_is_dispatched_again_never_to_the_releaser() {
    let engine = start(cfg());
    let mut a = TestRider::online_at(&engine, "A", north(200.0)).await;
    let mut b = TestRider::online_at(&engine, "B", north(1000.0)).await;
    let o = accepted_order(&engine).await;
    let id = o.order_id.clone();
    settle().await;
    let offer = a.accept_next().await;
    assert_eq!(assigned(&a.take()).len(), 1);

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
    assert_eq!(errors(&a.take()), vec!["offer_not_available".to_string()]);
    assert_eq!(order(&engine, &id).await.status, OrderStatus::Accepted);
}

// ---------------------------------------------------------------- 12. reconnect

#[actix_rt::test]
async fn a_reconnect_gets_welcome_with_what_the_rider_holds() {
    let engine = start(cfg());
    let mut busy = TestRider::online_at(&engine, "Busy", north(200.0)).await;
    let o1 = accepted_order(&engine).await;
    settle().await;
    busy.accept_next().await;
    assert_eq!(assigned(&busy.take()).len(), 1);

    let mut offered = TestRider::online_at(&engine, "Offered", north(400.0)).await;
    let o2 = accepted_order(&engine).await;
    settle().await;
    let open = the_offer(&offered.take());
    assert_eq!(open.order_id, o2.order_id);

    // Both lose their connection and come back on a new one.
    engine.detach_rider(&busy.id, busy.outbox.clone());
    engine.detach_rider(&offered.id, offered.outbox.clone());
    settle().await;
    advance(2.0).await;
    for r in [&mut busy, &mut offered] {
        let fresh = Outbox::new(64);
        engine.attach_rider(&r.id, fresh.clone()).await.unwrap();
        r.outbox = fresh;
    }
    let nb = busy.take();
    match nb.as_slice() {
        [RiderNotice::Welcome {
            rider_id,
            status,
            orders,
            offer,
            ..
        }] => {
            assert_eq!(rider_id, &busy.id);
            assert_eq!(*status, RiderStatus::Busy);
            assert_eq!(orders.len(), 1);
            assert_eq!(orders[0].order_id, o1.order_id);
            assert_eq!(orders[0].status, OrderStatus::Assigned);
            assert_eq!(*offer, None);
        }
        other => panic!("welcome expected: {other:?}"),
    }
    let no = offered.take();
    match no.as_slice() {
        [RiderNotice::Welcome {
            status,
            orders,
            offer,
            ..
        }] => {
            assert_eq!(*status, RiderStatus::Offered);
            assert!(orders.is_empty());
            assert_eq!(offer.as_ref(), Some(&open), "the open offer survives");
        }
        other => panic!("welcome expected: {other:?}"),
    }

    // A second attach replaces (closes) the first; the new one carries on.
    let old = offered.outbox.clone();
    let newer = Outbox::new(64);
    engine
        .attach_rider(&offered.id, newer.clone())
        .await
        .unwrap();
    assert!(old.is_closed());
    offered.outbox = newer;
    offered.take();
    offered.accept(&open);
    settle().await;
    assert_eq!(assigned(&offered.take()).len(), 1);
    assert_eq!(
        order(&engine, &o2.order_id).await.rider_id.as_ref(),
        Some(&offered.id)
    );
}

// ---------------------------------------------------------------- 13. trace

#[actix_rt::test]
async fn the_trace_records_candidates_and_why_riders_were_skipped() {
    let engine = start(cfg());
    let mut a = TestRider::online_at(&engine, "A", north(300.0)).await;
    let mut b = TestRider::online_at(&engine, "B", north(800.0)).await;
    let c = TestRider::online_at(&engine, "C", north(1500.0)).await;
    let o = accepted_order(&engine).await;
    let id = o.order_id.clone();
    settle().await;
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

// ---------------------------------------------------------------- more offer rules

#[actix_rt::test]
async fn an_accept_closes_every_other_open_offer_taken() {
    let mut c = cfg();
    c.dispatch.offer_fanout = 3;
    let engine = start(c);
    let mut a = TestRider::online_at(&engine, "A", north(300.0)).await;
    let mut b = TestRider::online_at(&engine, "B", north(600.0)).await;
    let mut d = TestRider::online_at(&engine, "D", north(900.0)).await;
    let o = accepted_order(&engine).await;
    settle().await;
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
    assert_eq!(errors(&d.take()), vec!["offer_not_available".to_string()]);
    let again = assigned(&b.take());
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].order_id, o.order_id);
    let o = order(&engine, &o.order_id).await;
    assert_eq!((o.rider_id.as_ref(), o.version), (Some(&b.id), 4));
}

#[actix_rt::test]
async fn cancelling_an_order_closes_its_open_offer_cancelled() {
    let engine = start(cfg());
    let mut a = TestRider::online_at(&engine, "A", north(300.0)).await;
    let o = accepted_order(&engine).await;
    settle().await;
    let offer = the_offer(&a.take());
    let done = engine
        .order_command(
            &o.order_id,
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
    let o1 = accepted_order(&engine).await;
    settle().await;
    let f1 = the_offer(&r.take());
    r.accept(&f1);
    settle().await;
    r.cmd(RiderCommand::PickedUp {
        order_id: o1.order_id.clone(),
    });
    settle().await;
    r.cmd(RiderCommand::Delivered {
        order_id: o1.order_id.clone(),
    });
    advance(6.0).await; // o1's actor is gone
    r.take();

    let o2 = accepted_order(&engine).await;
    settle().await;
    let f2 = the_offer(&r.take());
    assert_eq!(f2.order_id, o2.order_id);
    r.accept(&f1);
    settle().await;
    assert_eq!(errors(&r.take()), vec!["offer_not_available".to_string()]);
    assert_eq!(
        r.view().await.status,
        RiderStatus::Offered,
        "still holds the offer for o2"
    );
    r.accept(&f2);
    settle().await;
    let got = assigned(&r.take());
    assert_eq!(got.len(), 1, "the current offer can still be accepted");
    assert_eq!(
        order(&engine, &o2.order_id).await.rider_id.as_ref(),
        Some(&r.id)
    );
}

// ---------------------------------------------------------------- more silence rules

/// The usual reconnect of a silent rider: a new socket, `status online`, then a fix.
/// Only the fix counts as being heard from; it resolves the escalation.
#[actix_rt::test]
async fn a_silent_rider_reconnecting_is_heard_only_through_a_fix() {
    let mut c = cfg();
    c.timers.rider_silent_s = 10.0;
    c.timers.rider_lost_s = 40.0;
    let engine = start(c);
    let mut a = TestRider::online_at(&engine, "A", north(300.0)).await;
    let o = accepted_order(&engine).await;
    settle().await;
    a.accept_next().await;

    // A `status online` without a fix does not reset the silence timers.
    advance(5.0).await;
    a.cmd(RiderCommand::SetOnline(true));
    advance(5.5).await;
    assert_eq!(a.view().await.status, RiderStatus::Stale);
    assert!(the_escalation(&engine, EscalationKind::RiderSilent)
        .await
        .is_open());

    // Reconnect: welcome, status online (still stale: not heard yet), then a fix.
    advance(5.0).await;
    let fresh = Outbox::new(64);
    engine.attach_rider(&a.id, fresh.clone()).await.unwrap();
    a.outbox = fresh;
    a.cmd(RiderCommand::SetOnline(true));
    settle().await;
    assert!(matches!(
        a.take().first(),
        Some(RiderNotice::Welcome {
            status: RiderStatus::Stale,
            ..
        })
    ));
    assert_eq!(a.view().await.status, RiderStatus::Stale);
    a.send_fix();
    settle().await;
    assert_eq!(a.view().await.status, RiderStatus::Busy);
    let e = the_escalation(&engine, EscalationKind::RiderSilent).await;
    assert_eq!(e.resolved_by, Some(ResolvedBy::System));
    // Heard again in time: the order stays with A.
    advance(30.0).await;
    assert_eq!(
        order(&engine, &o.order_id).await.rider_id.as_ref(),
        Some(&a.id)
    );
}

/// Going offline does not park an order with a rider for ever: rider_lost_s still runs
/// while the rider holds an order it has not picked up.
#[actix_rt::test]
async fn a_rider_going_offline_with_an_unpicked_order_still_loses_it() {
    let mut c = cfg();
    c.timers.rider_silent_s = 10.0;
    c.timers.rider_lost_s = 20.0;
    let engine = start(c);
    let mut a = TestRider::online_at(&engine, "A", north(300.0)).await;
    let o = accepted_order(&engine).await;
    let id = o.order_id.clone();
    settle().await;
    a.accept_next().await;
    a.cmd(RiderCommand::SetOnline(false));
    settle().await;
    assert_eq!(a.view().await.status, RiderStatus::Offline);
    assert_eq!(a.view().await.order_ids, vec![id.clone()], "still holds it");

    let mut b = TestRider::online_at(&engine, "B", north(1200.0)).await;
    advance_fresh(19.0, &[&b]).await;
    assert_eq!(order(&engine, &id).await.rider_id.as_ref(), Some(&a.id));
    assert_eq!(
        the_escalation(&engine, EscalationKind::RiderSilent)
            .await
            .rider_id
            .as_ref(),
        Some(&a.id)
    );
    advance_fresh(2.0, &[&b]).await;
    assert_eq!(
        unassigned(&a.take()),
        vec![(id.clone(), UnassignReason::RiderLost)]
    );
    assert_eq!(b.offers_for(&id).len(), 1);
    assert_eq!(a.view().await.status, RiderStatus::Offline);
}

// ---------------------------------------------------------------- review fixes

#[actix_rt::test]
async fn a_finished_order_keeps_its_trace_and_who_was_offered_it() {
    let engine = start(cfg());
    let mut r = TestRider::online_at(&engine, "Ann", north(300.0)).await;
    let stranger = TestRider::online_at(&engine, "Far away", north(90_000.0)).await;
    let o = accepted_order(&engine).await;
    let id = o.order_id.clone();
    settle().await;
    let offer = the_offer(&r.take());
    assert!(engine.was_offered(&id, &r.id).await.unwrap());
    assert!(!engine.was_offered(&id, &stranger.id).await.unwrap());
    r.accept(&offer);
    settle().await;
    r.cmd(RiderCommand::PickedUp {
        order_id: id.clone(),
    });
    settle().await;
    r.cmd(RiderCommand::Delivered {
        order_id: id.clone(),
    });
    settle().await;
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

#[actix_rt::test]
async fn ready_after_a_late_pickup_does_not_fire_the_timer_again_at_once() {
    let mut c = cfg();
    c.timers.pickup_late_s = 10.0;
    let engine = start(c);
    let mut r = TestRider::online_at(&engine, "Ann", north(300.0)).await;
    // prep 0: food ready at acceptance, so pickup is late 10 s after assignment
    let o = accepted_order(&engine).await;
    let id = o.order_id.clone();
    settle().await;
    r.accept_next().await;
    advance_fresh(10.5, &[&r]).await;
    let e = the_escalation(&engine, EscalationKind::PickupLate).await;
    assert_eq!(e.level, 1);
    engine
        .order_command(&id, OrderCommand::MarkReady)
        .await
        .unwrap();
    advance_fresh(2.0, &[&r]).await;
    assert_eq!(
        the_escalation(&engine, EscalationKind::PickupLate)
            .await
            .level,
        1,
        "ready does not bring the next period forward"
    );
    advance_fresh(9.0, &[&r]).await;
    assert_eq!(
        the_escalation(&engine, EscalationKind::PickupLate)
            .await
            .level,
        2,
        "the next period still comes"
    );
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
    assert_eq!(
        order(&engine, &a.order_id).await.status,
        OrderStatus::Assigned
    );
    assert_eq!(
        order(&engine, &b.order_id).await.status,
        OrderStatus::Accepted
    );
    // The next rider to come free goes to B.
    let mut r2 = TestRider::online_at(&engine, "Next", north(600.0)).await;
    advance(2.5).await;
    let got = offers(&r2.take());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].order_id, b.order_id);
}
