//! One actor per live order. It owns the order's state machine, its offers and its
//! supervisor timers, and runs dispatch. Once the order reaches a final state the actor
//! stops; its final record stays in the store.

use super::desk::{Clear, Raise};
use super::matcher::{FindCandidates, StopWaiting, WaitForRider};
use super::rider::{
    CloseOffer, OrderAssigned, OrderCancelled, OrderChanged, OrderUnassigned, ProposeOffer,
    RemindRider, UnassignReason,
};
use super::Shared;
use crate::config::secs;
use crate::domain::dispatch::{DispatchPolicy, WhenEmpty};
use crate::domain::escalation::{EscalationKind, Subject};
use crate::domain::gps::GpsFix;
use crate::domain::ladder::{self, Step, Timer};
use crate::domain::offers::{
    CandidateTrace, ClaimError, Offer, OfferBook, OfferCloseReason, OpenOffer, SkippedTrace,
    TraceEntry,
};
use crate::domain::order::{
    Actor as By, Order, OrderCommand, OrderStatus, Transition, TransitionError,
};
use crate::domain::{OfferId, RiderId};
use crate::error::EngineError;
use crate::events::Event;
use crate::matcher::Nearby;
use crate::metric_names;
use crate::store::{OrderRecord, StoreError, TimerRecord};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a finished order's actor lingers (late rider messages get a clear answer).
const FINAL_LINGER: Duration = Duration::from_secs(5);
/// Under this many seconds away, the merchant hears `rider_arriving` (once).
const ARRIVING_S: f64 = 120.0;

struct ArmedTimer {
    handle: Option<SpawnHandle>,
    fired: u32,
    due_ms: u64,
}

pub struct OrderActor {
    order: Order,
    /// The matching policy (ranking, fanout, widening): plain rules, see domain::dispatch.
    policy: DispatchPolicy,
    offers: OfferBook,
    shared: Arc<Shared>,
    timers: HashMap<Timer, ArmedTimer>,
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
    /// When the current rider got the order (a reassignment keeps status `assigned`).
    assigned_ms: Option<u64>,
    arriving_sent: bool,
    /// The stored version this actor took the order over at (compare-and-set base).
    base_version: u64,
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
    }
}

impl OrderActor {
    pub fn new(order: Order, shared: Arc<Shared>) -> Self {
        let policy = DispatchPolicy::new(&shared.cfg.dispatch);
        let radius_m = policy.initial_radius_m();
        Self {
            order,
            policy,
            offers: OfferBook::default(),
            shared,
            timers: HashMap::new(),
            offer_timers: HashMap::new(),
            radius_m,
            dispatch_gen: 0,
            in_flight: None,
            retry: None,
            dispatch_started_ms: 0,
            rider_fix: None,
            waiting: false,
            assigned_ms: None,
            arriving_sent: false,
            base_version: 0,
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
        a.restored_timers = Some(rec.timers);
        a
    }

    /// What the store keeps of this order (see [`OrderRecord`]).
    fn record(&self) -> OrderRecord {
        let mut timers: Vec<TimerRecord> = self
            .timers
            .iter()
            .filter(|(_, a)| a.handle.is_some())
            .map(|(t, a)| TimerRecord {
                timer: *t,
                due_ms: a.due_ms,
                fired: a.fired,
            })
            .collect();
        timers.sort_by_key(|t| t.due_ms);
        OrderRecord {
            order: self.snapshot(),
            offers: self.offers.durable(),
            timers,
            radius_m: self.radius_m,
            base_version: self.base_version,
        }
    }

    fn on_started_restored(&mut self, ctx: &mut Context<Self>) {
        let Some(timers) = self.restored_timers.take() else {
            return;
        };
        let now = self.now();
        for t in timers {
            self.arm_at(t.timer, t.due_ms, t.fired, ctx);
        }
        let open: Vec<(OfferId, u64)> = self
            .offers
            .open_offers()
            .map(|o| (o.offer.offer_id.clone(), o.offer.expires_at_ms))
            .collect();
        for (id, expires) in open {
            let delay = Duration::from_millis(expires.saturating_sub(now));
            let key = id.clone();
            let h = ctx.run_later(delay, move |act, ctx| act.expire_offer(key, ctx));
            self.offer_timers.insert(id, h);
        }
        if self.order.status == OrderStatus::Accepted {
            self.dispatch_gen += 1;
            self.dispatch_started_ms = now;
            if !self.timers.contains_key(&Timer::DispatchRemind) {
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

    /// Writes the current order (with offers and timers) to the store; resolves with it
    /// once stored. A compare-and-set conflict means another engine moved the order: this
    /// actor lets go of it.
    fn persist(&self, ctx: &Context<Self>) -> ResponseFuture<Result<Order, EngineError>> {
        let rec = self.record();
        let store = self.shared.store.clone();
        let me = ctx.address();
        Box::pin(async move {
            match store.save_order_record(&rec).await {
                Ok(()) => Ok(rec.order),
                Err(e) => {
                    if matches!(e, StoreError::Conflict(_)) {
                        me.do_send(Relinquish);
                    }
                    Err(store_error(e))
                }
            }
        })
    }

    /// Persists a change nobody waits for (timers, dispatch).
    fn persist_in_background(&self, ctx: &mut Context<Self>) {
        let fut = self.persist(ctx);
        ctx.spawn(
            async move {
                if let Err(e) = fut.await {
                    tracing::warn!(%e, "order not saved");
                }
            }
            .into_actor(self),
        );
    }

    fn rider_addr(&self, rider: &RiderId) -> Option<Addr<super::rider::RiderActor>> {
        self.shared.dir.rider(rider)
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

    // ---- state changes ----

    /// Applies a command and runs its side effects (timers, dispatch, events).
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
                self.disarm(Timer::MerchantAccept, ctx);
                self.clear(vec![EscalationKind::MerchantUnresponsive]);
                self.start_dispatch(ctx);
            }
            (OrderStatus::Assigned, OrderStatus::Accepted) => {
                self.disarm(Timer::PickupLate, ctx);
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
                self.disarm(Timer::PickupLate, ctx);
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
        self.shared.bus.publish(Event::OrderChanged {
            order: Arc::new(self.snapshot()),
            previous_status: Some(t.from),
        });
        Ok(t)
    }

    /// Final state: no timers, no offers, no open escalations; the actor stops shortly.
    fn finish(&mut self, ctx: &mut Context<Self>) {
        let armed: Vec<Timer> = self.timers.keys().copied().collect();
        for t in armed {
            self.disarm(t, ctx);
        }
        self.stop_dispatch(ctx);
        let closed = self.offers.close_all(OfferCloseReason::Cancelled);
        self.tell_closed(closed, OfferCloseReason::Cancelled, ctx);
        self.clear(vec![
            EscalationKind::MerchantUnresponsive,
            EscalationKind::NoRider,
            EscalationKind::PickupLate,
            EscalationKind::DeliveryLate,
        ]);
        ctx.run_later(FINAL_LINGER, |_, ctx| ctx.stop());
    }

    fn tell_closed(
        &mut self,
        closed: Vec<OpenOffer>,
        reason: OfferCloseReason,
        ctx: &mut Context<Self>,
    ) {
        for (addr, msg) in self.close_offers(closed, reason, ctx) {
            addr.do_send(msg);
        }
    }

    /// Bookkeeping for closed offers (timers, metrics, events); returns the notices their
    /// riders are due, for the caller to send now or once the change is stored.
    fn close_offers(
        &mut self,
        closed: Vec<OpenOffer>,
        reason: OfferCloseReason,
        ctx: &mut Context<Self>,
    ) -> Vec<(Addr<super::rider::RiderActor>, CloseOffer)> {
        let mut notices = Vec::new();
        for o in closed {
            if let Some(h) = self.offer_timers.remove(&o.offer.offer_id) {
                ctx.cancel_future(h);
            }
            metrics::counter!(metric_names::OFFERS_TOTAL, "outcome" => reason.as_str())
                .increment(1);
            self.shared.bus.publish(Event::OfferClosed {
                offer_id: o.offer.offer_id.clone(),
                order_id: self.order.order_id.clone(),
                rider_id: o.rider_id.clone(),
                reason,
            });
            if reason != OfferCloseReason::Declined {
                if let Some(addr) = self.rider_addr(&o.rider_id) {
                    notices.push((
                        addr,
                        CloseOffer {
                            offer_id: o.offer.offer_id,
                            reason,
                        },
                    ));
                }
            }
        }
        notices
    }

    // ---- timers ----

    /// Arms `timer` to fire `delay_s` after `from_ms` (the event it counts from, not the
    /// moment this code runs), keeping its fire count unless `reset`.
    fn arm(
        &mut self,
        timer: Timer,
        from_ms: u64,
        delay_s: f64,
        reset: bool,
        ctx: &mut Context<Self>,
    ) {
        let fired = match self.timers.get(&timer) {
            Some(old) if !reset => old.fired,
            _ => 0,
        };
        let due_ms = from_ms + (delay_s.max(0.0) * 1000.0) as u64;
        self.arm_at(timer, due_ms, fired, ctx);
    }

    /// Arms a timer at an absolute due time (recovery), keeping how often it fired.
    fn arm_at(&mut self, timer: Timer, due_ms: u64, fired: u32, ctx: &mut Context<Self>) {
        if let Some(old) = self.timers.remove(&timer) {
            if let Some(h) = old.handle {
                ctx.cancel_future(h);
            }
        }
        let delay = Duration::from_millis(due_ms.saturating_sub(self.now()));
        let handle = ctx.run_later(delay, move |act, ctx| act.on_timer(timer, ctx));
        self.timers.insert(
            timer,
            ArmedTimer {
                handle: Some(handle),
                fired,
                due_ms,
            },
        );
    }

    fn disarm(&mut self, timer: Timer, ctx: &mut Context<Self>) {
        if let Some(t) = self.timers.remove(&timer) {
            if let Some(h) = t.handle {
                ctx.cancel_future(h);
            }
        }
    }

    /// Pickup is late `pickup_late_s` after the later of food-ready and the (latest)
    /// assignment. `on_ready`: the merchant pressed ready while the order is assigned — the
    /// deadline may only move earlier, and only before its first period fired.
    fn arm_pickup_late(&mut self, on_ready: bool, ctx: &mut Context<Self>) {
        let now = self.now();
        let assigned = self
            .assigned_ms
            .or_else(|| self.order.entered_ms(OrderStatus::Assigned))
            .unwrap_or(now);
        let from = self.order.ready_at_ms.unwrap_or(assigned).max(assigned);
        let due = from + (self.shared.cfg.timers.pickup_late_s * 1000.0) as u64;
        if on_ready {
            match self.timers.get(&Timer::PickupLate) {
                Some(t) if t.fired == 0 && due < t.due_ms => {}
                _ => return,
            }
        }
        self.arm(Timer::PickupLate, due, 0.0, !on_ready, ctx);
    }

    /// Due times of the armed timers (for persistence and inspection).
    pub fn deadlines(&self) -> Vec<(Timer, u64)> {
        self.timers.iter().map(|(t, a)| (*t, a.due_ms)).collect()
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Context<Self>) {
        let fired = match self.timers.get_mut(&timer) {
            Some(t) => {
                t.handle = None;
                t.fired += 1;
                t.fired
            }
            None => return,
        };
        let cfg = self.shared.cfg.timers.clone();
        let id = self.order.order_id.clone();
        for step in ladder::steps(timer, fired) {
            match step {
                Step::RemindMerchant => self.shared.bus.publish(Event::MerchantReminded {
                    merchant_id: self.order.merchant_id.clone(),
                    order_id: id.clone(),
                    message: format!("order {id} is waiting to be accepted"),
                }),
                Step::RemindRider => {
                    if let Some(r) = self
                        .order
                        .rider_id
                        .clone()
                        .and_then(|r| self.rider_addr(&r))
                    {
                        let message = match timer {
                            Timer::PickupLate => format!("pickup of {id} is late"),
                            _ => format!("delivery of {id} is late"),
                        };
                        r.do_send(RemindRider {
                            order_id: id.clone(),
                            message,
                        });
                    }
                }
                Step::Escalate(kind) => {
                    let message = match kind {
                        EscalationKind::MerchantUnresponsive => format!(
                            "merchant {} has not accepted {id} after {} s",
                            self.order.merchant_id, cfg.merchant_accept_s
                        ),
                        EscalationKind::NoRider => {
                            format!("no rider for {id} after {} dispatch periods", fired)
                        }
                        EscalationKind::PickupLate => format!("pickup of {id} is late"),
                        EscalationKind::DeliveryLate => format!("delivery of {id} is late"),
                        EscalationKind::RiderSilent => format!("rider silent on {id}"),
                    };
                    self.raise(kind, message);
                }
                Step::Resolve(kind) => self.clear(vec![kind]),
                Step::WidenSearch => {
                    self.radius_m = self.policy.widened(self.radius_m);
                    self.offers.forgive_expired();
                    self.try_dispatch(ctx);
                }
                Step::CancelAndRefund => {
                    let cmd = OrderCommand::Cancel {
                        by: By::System,
                        reason: Some("merchant did not accept in time; payment refunded".into()),
                    };
                    if self.change(cmd, ctx).is_ok() {
                        self.persist_in_background(ctx);
                    }
                }
                Step::RearmTimer => {
                    let period = match timer {
                        Timer::MerchantAccept => cfg.merchant_accept_s,
                        Timer::DispatchRemind => cfg.dispatch_remind_s,
                        Timer::PickupLate => cfg.pickup_late_s,
                        _ => cfg.delivery_timeout_s,
                    };
                    // The next period counts from when this one was due, so periods
                    // do not drift by however late the handler ran.
                    if let Some(due) = self.timers.get(&timer).map(|t| t.due_ms) {
                        self.arm(timer, due, period, false, ctx);
                    }
                }
                Step::ExpireOffer
                | Step::OfferNextCandidate
                | Step::MarkRiderStale
                | Step::ReassignUnpickedOrders => {}
            }
        }
        // Fired counts and new due times must survive a restart.
        if !self.order.status.is_final() {
            self.persist_in_background(ctx);
        }
    }

    // ---- dispatch ----

    /// Called as the order becomes `accepted`: counts from that change.
    fn start_dispatch(&mut self, ctx: &mut Context<Self>) {
        self.dispatch_gen += 1;
        self.radius_m = self.policy.initial_radius_m();
        self.dispatch_started_ms = self.order.updated_ms;
        self.arm(
            Timer::DispatchRemind,
            self.dispatch_started_ms,
            self.shared.cfg.timers.dispatch_remind_s,
            true,
            ctx,
        );
        self.try_dispatch(ctx);
    }

    /// The order's place in the queue for scarce riders: when it was first accepted.
    fn waiting_since_ms(&self) -> u64 {
        self.order
            .timeline
            .iter()
            .find(|e| e.status == OrderStatus::Accepted)
            .map_or(self.dispatch_started_ms, |e| e.at_ms)
    }

    /// Tells the matcher whether this order is starved of riders (see `WaitingOrders`).
    fn set_waiting(&mut self, waiting: bool) {
        if waiting {
            self.shared.matcher.do_send(WaitForRider {
                order_id: self.order.order_id.clone(),
                waiting: crate::matcher::Waiting {
                    since_ms: self.waiting_since_ms(),
                    at: self.order.pickup.point(),
                    radius_m: self.radius_m,
                    exclude: self.offers.excluded(),
                },
            });
        } else if self.waiting {
            self.shared
                .matcher
                .do_send(StopWaiting(self.order.order_id.clone()));
        }
        self.waiting = waiting;
    }

    fn stop_dispatch(&mut self, ctx: &mut Context<Self>) {
        self.set_waiting(false);
        self.dispatch_gen += 1;
        self.disarm(Timer::DispatchRemind, ctx);
        if let Some(h) = self.retry.take() {
            ctx.cancel_future(h);
        }
        self.clear(vec![EscalationKind::NoRider]);
    }

    fn trace(&mut self, event: String, candidates: Vec<CandidateTrace>) {
        self.trace_search(event, candidates, Vec::new());
    }

    fn trace_search(
        &mut self,
        event: String,
        candidates: Vec<CandidateTrace>,
        skipped: Vec<SkippedTrace>,
    ) {
        self.offers.record(TraceEntry {
            at_ms: self.now(),
            radius_m: self.radius_m,
            event,
            candidates,
            skipped,
        });
    }

    fn try_dispatch(&mut self, ctx: &mut Context<Self>) {
        let cfg = &self.shared.cfg.dispatch;
        if self.order.status != OrderStatus::Accepted
            || self.in_flight == Some(self.dispatch_gen)
            || !self.policy.wants_more_offers(self.offers.open_count())
        {
            return;
        }
        if !self.shared.store.writable() {
            // An offer that could not be stored must not be sent: try again later.
            self.schedule_retry(ctx);
            return;
        }
        let gen = self.dispatch_gen;
        self.in_flight = Some(gen);
        let query = FindCandidates {
            order_id: self.order.order_id.clone(),
            since_ms: self.waiting_since_ms(),
            at: self.order.pickup.point(),
            k: cfg.candidates_k.max(1),
            radius_m: self.radius_m,
            exclude: self.offers.excluded(),
        };
        let skipped = self.offers.skipped();
        ctx.spawn(
            self.shared
                .matcher
                .send(query)
                .into_actor(self)
                .map(move |res, act, ctx| {
                    if act.in_flight == Some(gen) {
                        act.in_flight = None;
                    }
                    if gen != act.dispatch_gen || act.order.status != OrderStatus::Accepted {
                        return;
                    }
                    match res {
                        Ok(cands) => act.on_candidates(cands, skipped, ctx),
                        Err(_) => act.schedule_retry(ctx),
                    }
                }),
        );
    }

    fn on_candidates(
        &mut self,
        cands: Vec<Nearby>,
        skipped: Vec<SkippedTrace>,
        ctx: &mut Context<Self>,
    ) {
        let cands = self.policy.rank(cands);
        if !cands.is_empty() {
            self.set_waiting(false);
        }
        let traced = cands
            .iter()
            .map(|c| CandidateTrace {
                rider_id: c.rider_id.clone(),
                distance_m: c.distance_m.round(),
                travel_s: self.policy.travel_s(c.distance_m).round(),
                decision: "candidate".into(),
            })
            .collect();
        self.trace_search(
            format!(
                "search within {} m: {} candidates ({} riders skipped: declined, expired or already offered)",
                self.radius_m,
                cands.len(),
                skipped.len()
            ),
            traced,
            skipped,
        );
        if cands.is_empty() {
            let step = self.policy.when_empty(
                self.radius_m,
                self.offers.open_count(),
                self.offers.expired_count(),
            );
            match step {
                WhenEmpty::Widen(r) => {
                    self.radius_m = r;
                    self.try_dispatch(ctx);
                }
                WhenEmpty::ForgiveExpired => {
                    self.offers.forgive_expired();
                    self.trace(
                        "nobody new in range: riders who let an offer expire may be offered again"
                            .into(),
                        vec![],
                    );
                    self.try_dispatch(ctx);
                }
                WhenEmpty::RetryLater => {
                    self.set_waiting(true);
                    self.schedule_retry(ctx);
                }
            }
            return;
        }
        self.propose(cands, 0, ctx);
    }

    fn schedule_retry(&mut self, ctx: &mut Context<Self>) {
        if self.retry.is_some() || self.order.status != OrderStatus::Accepted {
            return;
        }
        let delay = secs(self.shared.cfg.dispatch.retry_interval_s);
        self.retry = Some(ctx.run_later(delay, |act, ctx| {
            act.retry = None;
            act.try_dispatch(ctx);
        }));
    }

    fn propose(&mut self, cands: Vec<Nearby>, i: usize, ctx: &mut Context<Self>) {
        if i >= cands.len() || !self.policy.wants_more_offers(self.offers.open_count()) {
            if self.offers.open_count() == 0 {
                self.schedule_retry(ctx);
            }
            return;
        }
        let c = cands[i].clone();
        let Some(addr) = self.rider_addr(&c.rider_id) else {
            return self.propose(cands, i + 1, ctx);
        };
        let now = self.now();
        let offer = Offer {
            offer_id: OfferId::generate(),
            order_id: self.order.order_id.clone(),
            pickup: self.order.pickup.clone(),
            dropoff: self.order.dropoff,
            ready_at_ms: self.order.ready_at_ms,
            expires_at_ms: now + (self.shared.cfg.timers.offer_ttl_s * 1000.0) as u64,
            distance_m: c.distance_m.round(),
        };
        let gen = self.dispatch_gen;
        self.in_flight = Some(gen);
        // The offer is open in the book before the rider sees it, so an accept that arrives
        // before the rider's answer to this proposal is a valid claim.
        self.offer_opened(offer.clone(), c.clone(), ctx);
        ctx.spawn(addr.send(ProposeOffer(offer.clone())).into_actor(self).map(
            move |res, act, ctx| {
                if act.in_flight == Some(gen) {
                    act.in_flight = None;
                }
                let taken = matches!(res, Ok(true));
                let still_open = act.offers.get(&offer.offer_id).is_some();
                if !taken {
                    if still_open {
                        act.withdraw_offer(&offer.offer_id, ctx);
                    }
                    act.trace(format!("skipped {}: not idle any more", c.rider_id), vec![]);
                } else if still_open
                    && (gen != act.dispatch_gen || act.order.status != OrderStatus::Accepted)
                {
                    // Dispatch moved on while the rider was being asked.
                    act.withdraw_offer(&offer.offer_id, ctx);
                    if let Some(addr) = act.rider_addr(&c.rider_id) {
                        addr.do_send(CloseOffer {
                            offer_id: offer.offer_id.clone(),
                            reason: OfferCloseReason::Withdrawn,
                        });
                    }
                }
                if gen == act.dispatch_gen && act.order.status == OrderStatus::Accepted {
                    act.propose(cands, i + 1, ctx);
                }
            },
        ));
    }

    /// Records an offer as open: trace, event, expiry timer.
    fn offer_opened(&mut self, offer: Offer, c: Nearby, ctx: &mut Context<Self>) {
        let now = self.now();
        metrics::counter!(metric_names::OFFERS_TOTAL, "outcome" => "sent").increment(1);
        metrics::histogram!(metric_names::OFFER_LATENCY_SECONDS)
            .record(now.saturating_sub(self.dispatch_started_ms) as f64 / 1000.0);
        self.trace(
            format!("offered {} to {}", offer.offer_id, c.rider_id),
            vec![CandidateTrace {
                rider_id: c.rider_id.clone(),
                distance_m: c.distance_m.round(),
                travel_s: self.policy.travel_s(c.distance_m).round(),
                decision: "offered".into(),
            }],
        );
        self.shared.bus.publish(Event::OfferSent {
            offer_id: offer.offer_id.clone(),
            order_id: self.order.order_id.clone(),
            rider_id: c.rider_id.clone(),
            expires_at_ms: offer.expires_at_ms,
        });
        let id = offer.offer_id.clone();
        let ttl = secs(self.shared.cfg.timers.offer_ttl_s);
        let h = ctx.run_later(ttl, move |act, ctx| act.expire_offer(id, ctx));
        self.offer_timers.insert(offer.offer_id.clone(), h);
        self.offers.add(offer, c.rider_id, now);
        self.persist_in_background(ctx);
    }

    /// Takes back an offer its rider never held (not idle, or dispatch moved on).
    fn withdraw_offer(&mut self, id: &OfferId, ctx: &mut Context<Self>) {
        if let Some(h) = self.offer_timers.remove(id) {
            ctx.cancel_future(h);
        }
        if self.offers.withdraw(id).is_some() {
            metrics::counter!(metric_names::OFFERS_TOTAL, "outcome" => "refused").increment(1);
            self.persist_in_background(ctx);
        }
    }

    /// `offer_ttl_s` passed: the offer closes `expired` and the next candidate is tried.
    fn expire_offer(&mut self, id: OfferId, ctx: &mut Context<Self>) {
        self.offer_timers.remove(&id);
        for step in ladder::steps(Timer::OfferTtl, 1) {
            match step {
                Step::ExpireOffer => {
                    if let Some(o) = self.offers.close(&id, OfferCloseReason::Expired) {
                        self.trace(format!("offer {id} to {} expired", o.rider_id), vec![]);
                        self.tell_closed(vec![o], OfferCloseReason::Expired, ctx);
                    }
                }
                Step::OfferNextCandidate => self.try_dispatch(ctx),
                _ => {}
            }
        }
        self.persist_in_background(ctx);
    }

    /// A dispatcher's assignment: open offers close `withdrawn`, a previous rider is told.
    fn assign_by_dispatcher(
        &mut self,
        rider_id: RiderId,
        ctx: &mut Context<Self>,
    ) -> Result<Transition, EngineError> {
        let t = self.change(
            OrderCommand::Assign {
                rider_id: rider_id.clone(),
            },
            ctx,
        )?;
        let closed = self.offers.close_all(OfferCloseReason::Withdrawn);
        self.tell_closed(closed, OfferCloseReason::Withdrawn, ctx);
        self.trace(format!("assigned to {rider_id} by the dispatcher"), vec![]);
        Ok(t)
    }
}

impl Actor for OrderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.on_started_restored(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.set_waiting(false);
        self.shared.dir.orders.write().remove(&self.order.order_id);
    }
}

// ---- messages ----

#[derive(Message)]
#[rtype(result = "Order")]
pub struct GetOrder;

#[derive(Message)]
#[rtype(result = "Vec<TraceEntry>")]
pub struct GetTrace;

/// Was this order ever offered to the rider? (A rider may read such an order.)
#[derive(Message)]
#[rtype(result = "bool")]
pub struct WasOffered(pub RiderId);

/// Another engine moved this order (compare-and-set conflict): stop owning it. Later
/// calls for it read the stored record.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Relinquish;

impl Handler<Relinquish> for OrderActor {
    type Result = ();
    fn handle(&mut self, _: Relinquish, ctx: &mut Context<Self>) {
        tracing::warn!(order = %self.order.order_id, "order moved by another engine: actor stops");
        let armed: Vec<Timer> = self.timers.keys().copied().collect();
        for t in armed {
            self.disarm(t, ctx);
        }
        for (_, h) in self.offer_timers.drain() {
            ctx.cancel_future(h);
        }
        self.dispatch_gen += 1;
        ctx.stop();
    }
}

/// A command from REST (customer, merchant or dispatcher), or from the engine.
#[derive(Message)]
#[rtype(result = "Result<Order, EngineError>")]
pub struct Command(pub OrderCommand);

/// Assignment by the dispatcher (the rider was checked first).
#[derive(Message)]
#[rtype(result = "Result<Order, EngineError>")]
pub struct AssignByDispatcher {
    pub rider_id: RiderId,
    /// The rider's last accepted fix, so the order has an ETA from the start.
    pub fix: Option<GpsFix>,
}

/// A rider accepts an offer. First accept wins.
#[derive(Message)]
#[rtype(result = "Result<Order, EngineError>")]
pub struct ClaimOffer {
    pub offer_id: OfferId,
    pub rider_id: RiderId,
    /// The rider's last accepted fix, so the order has an ETA from the start.
    pub fix: Option<GpsFix>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct DeclineOffer {
    pub offer_id: OfferId,
    pub rider_id: RiderId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportKind {
    PickedUp,
    Delivered,
    Failed(String),
    Release,
}

#[derive(Message)]
#[rtype(result = "Result<Order, EngineError>")]
pub struct RiderReport {
    pub rider_id: RiderId,
    pub kind: ReportKind,
}

/// The rider holding this order has been silent for `rider_lost_s`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RiderLost {
    pub rider_id: RiderId,
}

/// An accepted fix of the rider holding this order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RiderMoved {
    pub rider_id: RiderId,
    pub fix: GpsFix,
}

impl Handler<GetOrder> for OrderActor {
    type Result = MessageResult<GetOrder>;
    fn handle(&mut self, _: GetOrder, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.snapshot())
    }
}

impl Handler<WasOffered> for OrderActor {
    type Result = bool;
    fn handle(&mut self, m: WasOffered, _: &mut Context<Self>) -> bool {
        self.offers.was_offered(&m.0)
    }
}

impl Handler<GetTrace> for OrderActor {
    type Result = MessageResult<GetTrace>;
    fn handle(&mut self, _: GetTrace, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.offers.trace().to_vec())
    }
}

impl Handler<Command> for OrderActor {
    type Result = ResponseFuture<Result<Order, EngineError>>;
    fn handle(&mut self, m: Command, ctx: &mut Context<Self>) -> Self::Result {
        let cmd = m.0;
        let is_ready = cmd == OrderCommand::MarkReady;
        let is_fail = matches!(cmd, OrderCommand::Fail { .. });
        let is_unassign = cmd == OrderCommand::Unassign;
        let t = match self.change(cmd, ctx) {
            Ok(t) => t,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        if let Some(prev) = &t.previous_rider {
            if let Some(addr) = self.rider_addr(prev) {
                if t.to == OrderStatus::Cancelled {
                    addr.do_send(OrderCancelled(self.order.order_id.clone()));
                } else if is_unassign {
                    addr.do_send(OrderUnassigned {
                        order_id: self.order.order_id.clone(),
                        reason: UnassignReason::Dispatcher,
                    });
                }
            }
            if is_unassign {
                self.trace(format!("{prev} unassigned by the dispatcher"), vec![]);
            }
        }
        if (is_ready && t.changed) || is_fail {
            if let Some(addr) = self
                .order
                .rider_id
                .clone()
                .and_then(|r| self.rider_addr(&r))
            {
                addr.do_send(OrderChanged(self.snapshot()));
            }
        }
        self.persist(ctx)
    }
}

impl Handler<AssignByDispatcher> for OrderActor {
    type Result = ResponseFuture<Result<Order, EngineError>>;
    fn handle(&mut self, m: AssignByDispatcher, ctx: &mut Context<Self>) -> Self::Result {
        let previous_fix = std::mem::replace(&mut self.rider_fix, m.fix);
        let t = match self.assign_by_dispatcher(m.rider_id.clone(), ctx) {
            Ok(t) => t,
            Err(e) => {
                self.rider_fix = previous_fix;
                return Box::pin(async move { Err(e) });
            }
        };
        // The riders hear of it only once it is stored (a lost compare-and-set tells no one).
        let previous = t.previous_rider.as_ref().and_then(|p| self.rider_addr(p));
        let assigned = if t.changed {
            self.rider_addr(&m.rider_id)
        } else {
            None
        };
        let stored = self.persist(ctx);
        Box::pin(async move {
            let order = stored.await?;
            if let Some(addr) = previous {
                addr.do_send(OrderUnassigned {
                    order_id: order.order_id.clone(),
                    reason: UnassignReason::Reassigned,
                });
            }
            if let Some(addr) = assigned {
                addr.do_send(OrderAssigned(order.clone()));
            }
            Ok(order)
        })
    }
}

impl Handler<ClaimOffer> for OrderActor {
    type Result = ResponseFuture<Result<Order, EngineError>>;
    fn handle(&mut self, m: ClaimOffer, ctx: &mut Context<Self>) -> Self::Result {
        let not_available =
            || -> Self::Result { Box::pin(async { Err(EngineError::OfferNotAvailable) }) };
        match self.offers.claim(&m.offer_id, &m.rider_id) {
            Err(ClaimError::AlreadyWon) if self.order.rider_id.as_ref() == Some(&m.rider_id) => {
                self.persist(ctx)
            }
            Err(_) => not_available(),
            Ok(_) if self.order.status != OrderStatus::Accepted => not_available(),
            Ok(others) => {
                if let Some(h) = self.offer_timers.remove(&m.offer_id) {
                    ctx.cancel_future(h);
                }
                metrics::counter!(metric_names::OFFERS_TOTAL, "outcome" => "accepted").increment(1);
                self.shared.bus.publish(Event::OfferClosed {
                    offer_id: m.offer_id.clone(),
                    order_id: self.order.order_id.clone(),
                    rider_id: m.rider_id.clone(),
                    reason: OfferCloseReason::Taken,
                });
                // The other riders hear that the offer is taken once the assignment is stored.
                let notices = self.close_offers(others, OfferCloseReason::Taken, ctx);
                self.trace(format!("{} accepted {}", m.rider_id, m.offer_id), vec![]);
                let previous_fix = std::mem::replace(&mut self.rider_fix, m.fix);
                match self.change(
                    OrderCommand::Assign {
                        rider_id: m.rider_id,
                    },
                    ctx,
                ) {
                    Ok(_) => {
                        let stored = self.persist(ctx);
                        Box::pin(async move {
                            let order = stored.await?;
                            for (addr, msg) in notices {
                                addr.do_send(msg);
                            }
                            Ok(order)
                        })
                    }
                    Err(e) => {
                        self.rider_fix = previous_fix;
                        Box::pin(async move { Err(e) })
                    }
                }
            }
        }
    }
}

impl Handler<DeclineOffer> for OrderActor {
    type Result = ();
    fn handle(&mut self, m: DeclineOffer, ctx: &mut Context<Self>) {
        let held = self
            .offers
            .get(&m.offer_id)
            .is_some_and(|o| o.rider_id == m.rider_id);
        if !held {
            return;
        }
        if let Some(o) = self.offers.close(&m.offer_id, OfferCloseReason::Declined) {
            self.trace(format!("{} declined {}", m.rider_id, m.offer_id), vec![]);
            self.tell_closed(vec![o], OfferCloseReason::Declined, ctx);
        }
        self.try_dispatch(ctx);
        self.persist_in_background(ctx);
    }
}

impl Handler<RiderReport> for OrderActor {
    type Result = ResponseFuture<Result<Order, EngineError>>;
    fn handle(&mut self, m: RiderReport, ctx: &mut Context<Self>) -> Self::Result {
        let rider = m.rider_id.clone();
        let result = match m.kind {
            ReportKind::PickedUp => self.change(OrderCommand::PickUp { rider_id: rider }, ctx),
            ReportKind::Delivered => self.change(OrderCommand::Deliver { rider_id: rider }, ctx),
            ReportKind::Failed(reason) => self.change(
                OrderCommand::Fail {
                    by: By::Rider(rider),
                    reason,
                },
                ctx,
            ),
            ReportKind::Release => {
                if self.order.rider_id.as_ref() != Some(&rider) {
                    Err(transition_error(TransitionError::NotYourOrder))
                } else {
                    let t = self.change(OrderCommand::Unassign, ctx);
                    if t.is_ok() {
                        self.trace(format!("{rider} released the order"), vec![]);
                    }
                    t
                }
            }
        };
        match result {
            Ok(_) => self.persist(ctx),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

impl Handler<RiderLost> for OrderActor {
    type Result = ();
    fn handle(&mut self, m: RiderLost, ctx: &mut Context<Self>) {
        if self.order.status != OrderStatus::Assigned
            || self.order.rider_id.as_ref() != Some(&m.rider_id)
        {
            return;
        }
        if self.change(OrderCommand::Unassign, ctx).is_ok() {
            self.trace(
                format!("{} lost (silent): dispatching again", m.rider_id),
                vec![],
            );
            self.persist_in_background(ctx);
        }
    }
}

impl Handler<RiderMoved> for OrderActor {
    type Result = ();
    fn handle(&mut self, m: RiderMoved, _: &mut Context<Self>) {
        if self.order.rider_id.as_ref() != Some(&m.rider_id)
            || !matches!(
                self.order.status,
                OrderStatus::Assigned | OrderStatus::PickedUp
            )
        {
            return;
        }
        self.rider_fix = Some(m.fix);
        let Some(eta) = self.eta_s() else { return };
        self.shared.bus.publish(Event::RiderMovedForOrder {
            order_id: self.order.order_id.clone(),
            customer_id: self.order.customer_id.clone(),
            merchant_id: self.order.merchant_id.clone(),
            rider_id: m.rider_id,
            location: m.fix.point,
            ts_ms: m.fix.ts_ms,
            eta_s: eta.round() as u64,
        });
        if self.order.status == OrderStatus::Assigned && !self.arriving_sent {
            let to_pickup = self
                .policy
                .travel_s(m.fix.point.distance_m(&self.order.pickup.point()));
            if to_pickup < ARRIVING_S {
                self.arriving_sent = true;
                self.shared.bus.publish(Event::RiderArriving {
                    order_id: self.order.order_id.clone(),
                    merchant_id: self.order.merchant_id.clone(),
                    eta_s: to_pickup.round() as u64,
                });
            }
        }
    }
}
