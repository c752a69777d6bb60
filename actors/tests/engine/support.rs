//! The harness: an engine on the memory store under tokio's paused clock, riders driven
//! the way a rider session drives them, and readers for what each rider was told.
//!
//! The types the scenarios use are re-exported from here, so a move of one of them in the
//! engine crate is one edit.

pub use dispatch_actors::domain::escalation::{Escalation, EscalationKind, ResolvedBy};
pub use dispatch_actors::domain::gps::RawFix;
pub use dispatch_actors::domain::merchant::Merchant;
pub use dispatch_actors::domain::offers::{Offer, OfferCloseReason};
pub use dispatch_actors::domain::order::{Order, OrderCommand, OrderStatus};
pub use dispatch_actors::domain::rider::RiderStatus;
pub use dispatch_actors::domain::{CustomerId, GeoPoint, OrderId, RiderId};
pub use dispatch_actors::events::Event;
pub use dispatch_actors::outbox::Outbox;
pub use dispatch_actors::protocol::{RiderCommand, RiderNotice, UnassignReason};
pub use dispatch_actors::store::MemoryStore;
pub use dispatch_actors::{Clock, Engine, EngineConfig, EngineError};
use std::sync::Arc;
pub use std::time::Duration;

pub const T0_MS: u64 = 1_700_000_000_000;

/// Short offer TTL; every timer a test does not exercise is far away, so it cannot
/// interfere. Tests shorten the one they are about. The `nearest` policy (offers at once):
/// the v1 scenarios count offers as they happen; batch.rs and bundles.rs set `batch`, and
/// props.rs runs its interleavings under both.
pub fn cfg() -> EngineConfig {
    let mut cfg = EngineConfig::for_tests();
    cfg.dispatch.policy = dispatch_actors::config::Policy::Nearest;
    cfg.timers.offer_ttl_s = 5.0;
    cfg.timers.merchant_accept_s = 3600.0;
    cfg.timers.dispatch_remind_s = 3600.0;
    cfg.timers.pickup_late_s = 3600.0;
    cfg.timers.delivery_timeout_s = 3600.0;
    cfg.timers.rider_silent_s = 3600.0;
    cfg.timers.rider_lost_s = 7200.0;
    cfg
}

/// An engine on `cfg()` with the timers a test is about changed by `tweak`.
pub fn start_with(tweak: impl FnOnce(&mut EngineConfig)) -> Engine {
    let mut c = cfg();
    tweak(&mut c);
    start(c)
}

pub fn start(cfg: EngineConfig) -> Engine {
    start_on(cfg, Arc::new(MemoryStore::new()))
}

/// An engine on a store of the test's choosing.
pub fn start_on(cfg: EngineConfig, store: Arc<dyn dispatch_actors::store::Store>) -> Engine {
    tokio::time::pause();
    Engine::start(cfg, store, Clock::starting_at(T0_MS))
}

pub fn centre() -> GeoPoint {
    GeoPoint::new(31.23, 121.47).unwrap()
}

/// `m` metres north of the city centre (where the merchant is).
pub fn north(m: f64) -> GeoPoint {
    centre().destination(0.0, m)
}

pub fn fix_at(p: GeoPoint, ts_ms: u64) -> RawFix {
    RawFix {
        lat: Some(p.lat()),
        lon: Some(p.lon()),
        ts_ms: Some(ts_ms as f64),
        ..Default::default()
    }
}

/// Lets the actors process what is queued (a few virtual milliseconds).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Advances virtual time by `secs`, in steps of at most one second.
pub async fn advance(secs: f64) {
    advance_fresh(secs, &[]).await
}

/// Advances virtual time by `secs` while the riders in `fresh` keep sending a fix (at
/// their position) every second, so they never turn stale.
pub async fn advance_fresh(secs: f64, fresh: &[&TestRider]) {
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

/// A rider as its session drives it: commands in, notices read from its outbox.
pub struct TestRider {
    pub id: RiderId,
    pub outbox: Outbox<RiderNotice>,
    engine: Engine,
    at: GeoPoint,
    /// Every notice read so far.
    pub log: Vec<RiderNotice>,
}

impl TestRider {
    /// Creates a rider, connects it, sets it online and sends one fix at `at`.
    pub async fn online_at(engine: &Engine, name: &str, at: GeoPoint) -> TestRider {
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

    /// A rider already created and attached by the test (status as the test left it).
    pub fn from_parts(engine: &Engine, id: RiderId, outbox: Outbox<RiderNotice>) -> TestRider {
        TestRider {
            engine: engine.clone(),
            id,
            at: centre(),
            outbox,
            log: Vec::new(),
        }
    }

    pub fn cmd(&self, c: RiderCommand) {
        self.engine.rider_command(&self.id, c).unwrap();
    }

    /// Moves the rider to `p` and sends a fix from there.
    pub fn move_to(&mut self, p: GeoPoint) {
        self.at = p;
        self.send_fix();
    }

    pub fn send_fix(&self) {
        self.cmd(RiderCommand::Location(fix_at(
            self.at,
            self.engine.now_ms(),
        )));
    }

    /// Notices that arrived since the last call (also kept in `log`).
    pub fn take(&mut self) -> Vec<RiderNotice> {
        let new = self.outbox.drain();
        self.log.extend(new.iter().cloned());
        new
    }

    /// All offers this rider was ever sent for `order`.
    pub fn offers_for(&mut self, order: &OrderId) -> Vec<Offer> {
        self.take();
        offers(&self.log)
            .into_iter()
            .filter(|o| &o.order_id == order)
            .collect()
    }

    pub async fn view(&self) -> dispatch_actors::domain::rider::RiderView {
        self.engine.rider(&self.id).await.unwrap()
    }

    /// Takes the one offer this rider was sent, accepts it and lets the engine settle.
    pub async fn accept_next(&mut self) -> Offer {
        let offer = the_offer(&self.take());
        self.accept(&offer);
        settle().await;
        offer
    }

    pub fn accept(&self, offer: &Offer) {
        self.cmd(RiderCommand::Accept {
            offer_id: offer.offer_id.clone(),
        });
    }

    /// Accepts the one offer it was sent and checks it was assigned the order.
    pub async fn take_next(&mut self) -> Offer {
        let offer = self.accept_next().await;
        assert_eq!(assigned(&self.take()).len(), 1);
        offer
    }

    /// Reports the pickup of `order_id` and lets the engine settle.
    pub async fn picked_up(&self, order_id: &OrderId) {
        let order_id = order_id.clone();
        self.cmd(RiderCommand::PickedUp { order_id });
        settle().await;
    }

    /// Reports the delivery of `order_id` and lets the engine settle.
    pub async fn delivered(&self, order_id: &OrderId) {
        let order_id = order_id.clone();
        self.cmd(RiderCommand::Delivered { order_id });
        settle().await;
    }

    /// The rider was told, and only told, that the offer it tried is not available.
    #[track_caller]
    pub fn assert_offer_refused(&mut self) {
        assert_eq!(
            errors(&self.take()),
            vec!["offer_not_available".to_string()]
        );
    }

    /// Attaches a new connection (outbox) in place of the current one.
    pub async fn reconnect(&mut self) {
        let fresh = Outbox::new(64);
        self.engine
            .attach_rider(&self.id, fresh.clone())
            .await
            .unwrap();
        self.outbox = fresh;
    }
}

/// Riders online at the given metres north of the centre, created in that order.
pub async fn riders_north<const N: usize>(engine: &Engine, at: [(&str, f64); N]) -> [TestRider; N] {
    let mut riders = Vec::new();
    for (name, m) in at {
        riders.push(TestRider::online_at(engine, name, north(m)).await);
    }
    riders.try_into().ok().expect("one rider per entry")
}

/// The notices in `ns` that match `pattern`, mapped by `out`.
macro_rules! pick {
    ($ns:expr, $pattern:pat => $out:expr) => {
        $ns.iter()
            .filter_map(|n| match n {
                $pattern => Some($out),
                _ => None,
            })
            .collect()
    };
}

pub fn offers(ns: &[RiderNotice]) -> Vec<Offer> {
    pick!(ns, RiderNotice::Offer(o) => o.clone())
}

pub fn the_offer(ns: &[RiderNotice]) -> Offer {
    let o = offers(ns);
    assert_eq!(o.len(), 1, "expected exactly one offer in {ns:?}");
    o[0].clone()
}

pub fn closed(ns: &[RiderNotice]) -> Vec<(dispatch_actors::domain::OfferId, OfferCloseReason)> {
    pick!(ns, RiderNotice::OfferClosed { offer_id, reason } => (offer_id.clone(), *reason))
}

pub fn errors(ns: &[RiderNotice]) -> Vec<String> {
    pick!(ns, RiderNotice::Error { code, .. } => code.clone())
}

pub fn assigned(ns: &[RiderNotice]) -> Vec<Order> {
    pick!(ns, RiderNotice::Assigned { order } => order.clone())
}

pub fn updated(ns: &[RiderNotice]) -> Vec<Order> {
    pick!(ns, RiderNotice::OrderUpdated { order } => order.clone())
}

pub fn unassigned(ns: &[RiderNotice]) -> Vec<(OrderId, UnassignReason)> {
    pick!(ns, RiderNotice::Unassigned { order_id, reason } => (order_id.clone(), *reason))
}

pub fn reminders(ns: &[RiderNotice]) -> usize {
    ns.iter()
        .filter(|n| matches!(n, RiderNotice::Reminder { .. }))
        .count()
}

/// A merchant at the city centre with prep time 0 (food ready at accept), one item.
pub async fn merchant(engine: &Engine) -> (Merchant, dispatch_actors::domain::ItemId) {
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
pub async fn paid_order(engine: &Engine) -> Order {
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
pub async fn accepted_order(engine: &Engine) -> Order {
    let o = paid_order(engine).await;
    let o = engine.accept_order(&o.order_id, Some(0)).await.unwrap();
    assert_eq!(o.status, OrderStatus::Accepted);
    o
}

pub async fn order(engine: &Engine, id: &OrderId) -> Order {
    engine.order(id).await.unwrap()
}

/// An accepted order once its first search has run; its id.
pub async fn dispatched(engine: &Engine) -> OrderId {
    let o = accepted_order(engine).await;
    settle().await;
    o.order_id
}

pub async fn status_of(engine: &Engine, id: &OrderId) -> OrderStatus {
    order(engine, id).await.status
}

pub async fn rider_of(engine: &Engine, id: &OrderId) -> Option<RiderId> {
    order(engine, id).await.rider_id
}

pub async fn escalations_of(engine: &Engine, kind: EscalationKind) -> Vec<Escalation> {
    engine
        .escalations(false)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

/// The one escalation of `kind` (asserting there is exactly one).
pub async fn the_escalation(engine: &Engine, kind: EscalationKind) -> Escalation {
    let all = escalations_of(engine, kind).await;
    assert_eq!(all.len(), 1, "one {kind:?} escalation expected: {all:?}");
    all[0].clone()
}

/// How many escalations of `kind` there are, open or not.
pub async fn count_of(engine: &Engine, kind: EscalationKind) -> usize {
    escalations_of(engine, kind).await.len()
}

/// The level of the one escalation of `kind`.
pub async fn level_of(engine: &Engine, kind: EscalationKind) -> u32 {
    the_escalation(engine, kind).await.level
}

/// An order held as its state says: an assigned or picked-up order by exactly its rider
/// (in that rider's own view), any other by nobody.
pub fn held_as_its_state(id: &OrderId, o: &Order, holders: &[&RiderId]) -> Result<(), String> {
    match o.status {
        OrderStatus::Assigned | OrderStatus::PickedUp => {
            let Some(rider) = &o.rider_id else {
                return Err(format!("{id} is {:?} without a rider", o.status));
            };
            if holders != [rider] {
                return Err(format!("{id} is {rider}'s but held by {holders:?}"));
            }
        }
        _ if !holders.is_empty() => {
            return Err(format!("{id} is {:?} but held by {holders:?}", o.status));
        }
        _ => {}
    }
    Ok(())
}
