//! One actor per live order. It owns the order's state machine, its offers and its
//! supervisor timers, and runs dispatch. Once the order reaches a final state the actor
//! stops; its final record stays in the store.
//!
//! - this file: the actor's state, what it stores, and state changes with their effects;
//! - `handlers`: the messages it answers (docs: `crate::protocol`);
//! - `timers`: supervisor timers and the escalation ladder's steps;
//! - `dispatch`: the search for a rider and the offers;
//! - `notices`: what others hear, sent only once the change is stored.

mod dispatch;
mod handlers;
mod notices;
mod timers;

use super::desk::{Clear, Raise};
use super::timers::TimerSet;
use super::Shared;
use crate::domain::dispatch::DispatchPolicy;
use crate::domain::escalation::{EscalationKind, Subject};
use crate::domain::gps::GpsFix;
use crate::domain::ladder::Timer;
use crate::domain::offers::{OfferBook, OfferCloseReason};
use crate::domain::order::{Order, OrderCommand, OrderStatus, Transition, TransitionError};
use crate::domain::zone::ZoneId;
use crate::domain::OfferId;
use crate::error::EngineError;
use crate::events::Event;
use crate::metric_names;
use crate::store::{OrderRecord, StoreError, TimerRecord};
use actix::prelude::*;
use notices::Notice;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a finished order's actor lingers (late rider messages get a clear answer).
const FINAL_LINGER: Duration = Duration::from_secs(5);
/// Under this many seconds away, the merchant hears `rider_arriving` (once).
const ARRIVING_S: f64 = 120.0;

pub struct OrderActor {
    order: Order,
    /// The matching policy (ranking, fanout, widening): plain rules, see domain::dispatch.
    policy: DispatchPolicy,
    offers: OfferBook,
    shared: Arc<Shared>,
    timers: TimerSet,
    offer_timers: HashMap<OfferId, SpawnHandle>,
    radius_m: f64,
    /// Bumped whenever dispatch restarts or stops: async results of an older round are
    /// discarded.
    dispatch_gen: u64,
    in_flight: Option<u64>,
    retry: Option<SpawnHandle>,
    dispatch_started_ms: u64,
    rider_fix: Option<GpsFix>,
    /// Registered with the matcher as starved of riders.
    waiting: bool,
    /// Waiting for the batch planner's next round.
    planned: bool,
    /// When the current rider got the order (a reassignment keeps status `assigned`).
    assigned_ms: Option<u64>,
    /// `rider_arriving` went out (stored, so a restart does not repeat it).
    arriving_sent: bool,
    /// The stored version this actor took the order over at (compare-and-set base).
    base_version: u64,
    /// The order's zone, kept from its record so every write goes under the same keys.
    zone: Option<ZoneId>,
    /// Write sequence: bumped on every write of this order, so a late write of an older
    /// capture never overwrites a newer one with the same `version`.
    seq: u64,
    /// What others hear of changes not yet handed to the store (see `notices`).
    outgoing: Vec<Notice>,
    /// Timers to re-arm at their original due times once started (recovery).
    restored_timers: Option<Vec<TimerRecord>>,
}

fn transition_error(e: TransitionError) -> EngineError {
    match e {
        TransitionError::Illegal { .. } => EngineError::InvalidTransition(e.to_string()),
        TransitionError::NotYourOrder | TransitionError::NotAllowed { .. } => {
            EngineError::Forbidden(e.to_string())
        }
    }
}

fn store_error(e: StoreError) -> EngineError {
    match e {
        StoreError::Conflict(_) => {
            EngineError::InvalidTransition("the order was changed elsewhere".into())
        }
        StoreError::Unavailable(m) => EngineError::Unavailable(m),
        // Another node owns the order's zone now: the client retries and reaches it.
        StoreError::Fenced(z) => EngineError::Unavailable(format!("zone {z} moved, retry")),
    }
}

impl OrderActor {
    pub fn new(order: Order, shared: Arc<Shared>) -> Self {
        let policy = DispatchPolicy::new(&shared.cfg.dispatch);
        let radius_m = policy.initial_radius_m();
        // With zones on, the order is written under its pickup's zone (docs/cluster.md).
        let zone = shared.zones.get().and_then(|z| {
            let at = crate::domain::GeoPoint::new(order.pickup.lat, order.pickup.lon).ok()?;
            Some(z.zoning.zone_of(at))
        });
        Self {
            order,
            policy,
            offers: OfferBook::default(),
            shared,
            timers: TimerSet::default(),
            offer_timers: HashMap::new(),
            radius_m,
            dispatch_gen: 0,
            in_flight: None,
            retry: None,
            dispatch_started_ms: 0,
            rider_fix: None,
            waiting: false,
            planned: false,
            assigned_ms: None,
            arriving_sent: false,
            base_version: 0,
            zone,
            seq: 0,
            outgoing: Vec::new(),
            restored_timers: None,
        }
    }

    /// An order coming back from the store after a restart: its offers, decliners and
    /// timers as they were. Timers re-arm at their original due times (one already past
    /// fires at once), open offers expire at their original time, dispatch resumes.
    pub fn restore(rec: OrderRecord, shared: Arc<Shared>) -> Self {
        let mut a = Self::new(rec.order, shared);
        a.offers = OfferBook::restore(rec.offers);
        if rec.radius_m > 0.0 {
            a.radius_m = rec.radius_m;
        }
        a.base_version = rec.base_version;
        a.zone = rec.zone.or(a.zone);
        a.seq = rec.seq;
        a.arriving_sent = rec.arriving_sent;
        a.restored_timers = Some(rec.timers);
        a
    }

    /// What the store keeps of this order (see [`OrderRecord`]).
    fn record(&self) -> OrderRecord {
        OrderRecord {
            order: self.snapshot(),
            offers: self.offers.durable(),
            timers: self.timers.records(),
            radius_m: self.radius_m,
            arriving_sent: self.arriving_sent,
            seq: self.seq,
            zone: self.zone,
            base_version: self.base_version,
        }
    }

    fn on_started_restored(&mut self, ctx: &mut Context<Self>) {
        let Some(timers) = self.restored_timers.take() else {
            return;
        };
        let now = self.now();
        for t in timers {
            self.timers
                .arm_at(t.timer, t.due_ms, t.fired, now, ctx, Self::on_timer);
        }
        let open: Vec<(OfferId, u64)> = self
            .offers
            .open_offers()
            .map(|o| (o.offer.offer_id.clone(), o.offer.expires_at_ms))
            .collect();
        for (id, expires) in open {
            self.arm_offer_expiry(id, expires, ctx);
        }
        if self.order.status == OrderStatus::Accepted {
            self.dispatch_gen += 1;
            self.dispatch_started_ms = now;
            if self.timers.get(Timer::DispatchRemind).is_none() {
                self.arm(
                    Timer::DispatchRemind,
                    now,
                    self.shared.cfg.timers.dispatch_remind_s,
                    true,
                    ctx,
                );
            }
            self.try_dispatch(ctx);
        }
    }

    fn now(&self) -> u64 {
        self.shared.now_ms()
    }

    /// The order as clients see it, with a fresh ETA.
    fn snapshot(&self) -> Order {
        let mut o = self.order.clone();
        o.eta_s = self.eta_s().map(|s| s.round() as u64);
        o
    }

    fn eta_s(&self) -> Option<f64> {
        let fix = self.rider_fix?;
        let p = &self.policy;
        let pickup = self.order.pickup.point();
        match self.order.status {
            OrderStatus::Assigned => {
                let to_pickup = p.travel_s(fix.point.distance_m(&pickup));
                let wait = self
                    .order
                    .ready_at_ms
                    .map(|r| r.saturating_sub(self.now()) as f64 / 1000.0)
                    .unwrap_or(0.0);
                Some(to_pickup.max(wait) + p.travel_s(pickup.distance_m(&self.order.dropoff)))
            }
            OrderStatus::PickedUp => Some(p.travel_s(fix.point.distance_m(&self.order.dropoff))),
            _ => None,
        }
    }

    fn raise(&self, kind: EscalationKind, message: String) {
        self.shared.desk.do_send(Raise {
            kind,
            order_id: Some(self.order.order_id.clone()),
            rider_id: self.order.rider_id.clone(),
            message,
        });
    }

    fn clear(&self, kinds: Vec<EscalationKind>) {
        self.shared.desk.do_send(Clear {
            kinds,
            subject: Subject::Order(self.order.order_id.clone()),
        });
    }

    /// Applies a command and runs its side effects (timers, dispatch). What the change
    /// announces is queued and goes out once it is stored (the caller persists).
    fn change(
        &mut self,
        cmd: OrderCommand,
        ctx: &mut Context<Self>,
    ) -> Result<Transition, EngineError> {
        if !self.shared.store.writable() {
            return Err(EngineError::Unavailable(
                "the store is unavailable; nothing was changed".into(),
            ));
        }
        let t = self
            .order
            .apply(cmd, self.now())
            .map_err(transition_error)?;
        if !t.changed {
            return Ok(t);
        }
        // Everything this change starts counts from the moment it happened.
        let now = self.order.updated_ms;
        if t.to != t.from {
            metrics::counter!(metric_names::ORDERS_TOTAL, "status" => t.to.as_str()).increment(1);
            tracing::info!(order = %self.order.order_id, from = t.from.as_str(), to = t.to.as_str(), "order");
        }
        match (t.from, t.to) {
            (_, OrderStatus::Paid) => self.arm(
                Timer::MerchantAccept,
                now,
                self.shared.cfg.timers.merchant_accept_s,
                true,
                ctx,
            ),
            (OrderStatus::Paid, OrderStatus::Accepted) => {
                self.timers.disarm(Timer::MerchantAccept, ctx);
                self.clear(vec![EscalationKind::MerchantUnresponsive]);
                self.start_dispatch(ctx);
            }
            (OrderStatus::Assigned, OrderStatus::Accepted) => {
                self.timers.disarm(Timer::PickupLate, ctx);
                self.clear(vec![EscalationKind::PickupLate]);
                self.offers.forget_winner();
                self.rider_fix = None;
                self.assigned_ms = None;
                // Whoever handed the order back (release, lost, unassigned) counts as a decline,
                // remembered before the new search starts.
                if let Some(prev) = &t.previous_rider {
                    self.offers.remember_decline(prev.clone());
                }
                self.start_dispatch(ctx);
            }
            (OrderStatus::Assigned, OrderStatus::Assigned) if t.previous_rider.is_none() => {
                // `ready` while assigned: the pickup deadline may move earlier.
                self.arm_pickup_late(true, ctx);
            }
            (_, OrderStatus::Assigned) => {
                self.stop_dispatch(ctx);
                if t.from == OrderStatus::Accepted {
                    if let Some(acc) = self.order.entered_ms(OrderStatus::Accepted) {
                        metrics::histogram!(metric_names::ASSIGNMENT_LATENCY_SECONDS)
                            .record(now.saturating_sub(acc) as f64 / 1000.0);
                    }
                }
                // The caller set `rider_fix` to the new rider's last fix; `rider_arriving` is
                // once per order, so a reassignment does not repeat it.
                self.assigned_ms = Some(now);
                self.arm_pickup_late(false, ctx);
            }
            (OrderStatus::Assigned, OrderStatus::PickedUp) => {
                self.timers.disarm(Timer::PickupLate, ctx);
                self.clear(vec![EscalationKind::PickupLate]);
                self.arm(
                    Timer::DeliveryTimeout,
                    now,
                    self.shared.cfg.timers.delivery_timeout_s,
                    true,
                    ctx,
                );
            }
            (_, to) if to.is_final() => self.finish(ctx),
            _ => {}
        }
        self.announce(Event::OrderChanged {
            order: Arc::new(self.snapshot()),
            previous_status: Some(t.from),
        });
        Ok(t)
    }

    /// Final state: no timers, no offers, no open escalations; the actor stops shortly.
    fn finish(&mut self, ctx: &mut Context<Self>) {
        self.timers.disarm_all(ctx);
        self.stop_dispatch(ctx);
        let closed = self.offers.close_all(OfferCloseReason::Cancelled);
        self.close_offers(closed, OfferCloseReason::Cancelled, ctx);
        self.clear(vec![
            EscalationKind::MerchantUnresponsive,
            EscalationKind::NoRider,
            EscalationKind::PickupLate,
            EscalationKind::DeliveryLate,
        ]);
        ctx.run_later(FINAL_LINGER, |_, ctx| ctx.stop());
    }
}

impl OrderActor {
    /// Leaves the directory, unless another actor of the order is listed by now (the
    /// zone came back to this node and the order was rebuilt meanwhile).
    pub(super) fn unlist(&self, ctx: &Context<Self>) {
        let mut orders = self.shared.dir.orders.write();
        if orders
            .get(&self.order.order_id)
            .is_some_and(|a| *a == ctx.address())
        {
            orders.remove(&self.order.order_id);
        }
    }
}

impl Actor for OrderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.on_started_restored(ctx);
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        self.set_waiting(false);
        self.leave_plan();
        self.unlist(ctx);
    }
}
