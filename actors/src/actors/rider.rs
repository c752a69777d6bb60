//! One actor per rider, alive as long as the rider exists. A WebSocket session attaches an
//! [`Outbox`] and detaches on disconnect, so a reconnect finds the rider's state (orders in
//! hand, an open offer) intact. Everything the rider is told goes through that outbox.

use super::desk::{Clear, Raise};
use super::matcher::{RemoveRider, UpsertRider};
use super::timers::TimerSet;
use super::Shared;
use crate::domain::escalation::{EscalationKind, Subject};
use crate::domain::gps::{FixVerdict, GpsFix, GpsRules, RawFix};
use crate::domain::ladder::{self, Step, Timer};
use crate::domain::offers::Offer;
use crate::domain::order::OrderStatus;
use crate::domain::rider::{RiderState, RiderStatus};
use crate::domain::{GeoPoint, OfferId, OrderId};
use crate::error::EngineError;
use crate::events::Event;
use crate::metric_names;
use crate::outbox::{Outbox, PushOutcome};
use crate::protocol::{
    AttachSession, CheckAssignable, ClaimOffer, CloseOffer, DeclineOffer, DetachSession, FromRider,
    GetOrder, GetRider, OrderAssigned, OrderCancelled, OrderChanged, OrderUnassigned, ProposeOffer,
    RemindRider, ReportKind, RiderCommand, RiderLost, RiderMoved, RiderNotice, RiderReport,
    UnassignReason,
};
use actix::prelude::*;
use std::sync::Arc;

pub struct RiderActor {
    state: RiderState,
    shared: Arc<Shared>,
    session: Option<Outbox<RiderNotice>>,
    /// rider_silent and rider_lost, counted from the last accepted fix.
    timers: TimerSet,
    /// What the matcher holds for this rider: (position, available), or None.
    in_matcher: Option<(GeoPoint, bool)>,
    gauge_status: Option<RiderStatus>,
    /// Recovery: when the rider was last heard from, to re-arm its silence timers at their
    /// original due times once started.
    restored_heard_ms: Option<u64>,
}

impl RiderActor {
    pub fn new(state: RiderState, shared: Arc<Shared>) -> Self {
        Self {
            state,
            shared,
            session: None,
            timers: TimerSet::default(),
            in_matcher: None,
            gauge_status: None,
            restored_heard_ms: None,
        }
    }

    /// A rider coming back from the store after a restart. Its silence timers count from
    /// `heard_ms` (its last fix), so one already past fires at once.
    pub fn restore(state: RiderState, shared: Arc<Shared>, heard_ms: u64) -> Self {
        let mut a = Self::new(state, shared);
        a.restored_heard_ms = Some(heard_ms);
        a
    }

    fn tell(&mut self, notice: RiderNotice) {
        let Some(outbox) = &self.session else { return };
        match outbox.push(notice) {
            PushOutcome::Queued | PushOutcome::Coalesced => {}
            PushOutcome::Overflowed => {
                metrics::counter!(metric_names::WS_FRAMES_DROPPED_TOTAL, "socket" => "rider", "why" => "overflow")
                    .increment(1);
                self.session = None;
            }
            PushOutcome::Closed => self.session = None,
        }
    }

    fn connected(&self) -> bool {
        self.session.as_ref().is_some_and(|s| !s.is_closed())
    }

    /// Brings the matcher, gauges and subscribers in line with the rider's state after a
    /// change. Called at the end of every handler that may change something.
    fn settle(&mut self, before: RiderStatus, moved: bool) {
        let status = self.state.status();
        let want = match (self.state.position(), status) {
            (Some(p), RiderStatus::Idle | RiderStatus::Offered | RiderStatus::Busy) => {
                Some((p, self.state.available_for_offers()))
            }
            _ => None,
        };
        if want != self.in_matcher {
            let sent = match want {
                Some((point, available)) => self
                    .shared
                    .matcher
                    .try_send(UpsertRider {
                        rider_id: self.state.rider_id.clone(),
                        point,
                        available,
                    })
                    .is_ok(),
                None => self
                    .shared
                    .matcher
                    .try_send(RemoveRider {
                        rider_id: self.state.rider_id.clone(),
                    })
                    .is_ok(),
            };
            if sent {
                self.in_matcher = want;
            } else {
                // The matcher's queue is full: drop this update (counted) and keep the old
                // belief, so the next change of this rider sends the whole state again. The
                // RiderActor stays the authority: it refuses offers when not idle.
                metrics::counter!(metric_names::MATCHER_UPDATES_DROPPED_TOTAL).increment(1);
            }
        }
        if self.gauge_status != Some(status) {
            if let Some(old) = self.gauge_status {
                metrics::gauge!(metric_names::RIDERS, "status" => old.as_str()).decrement(1.0);
            }
            metrics::gauge!(metric_names::RIDERS, "status" => status.as_str()).increment(1.0);
            self.gauge_status = Some(status);
        }
        if status != before || moved {
            let view = self.state.view();
            if status != before {
                let store = self.shared.store.clone();
                let v = view.clone();
                actix::spawn(async move {
                    if let Err(e) = store.save_rider(&v).await {
                        tracing::warn!(%e, "rider not saved");
                    }
                });
            }
            self.shared.bus.publish(Event::RiderChanged {
                rider: Arc::new(view),
            });
        }
    }

    fn arm_silence(&mut self, ctx: &mut Context<Self>) {
        let now = self.shared.now_ms();
        self.arm_silence_from(now, ctx);
    }

    /// Silence timers counted from `heard_ms`, the last time the rider was heard from
    /// (now, or its last fix after a restart: then one already past fires at once).
    fn arm_silence_from(&mut self, heard_ms: u64, ctx: &mut Context<Self>) {
        let t = &self.shared.cfg.timers;
        let (silent_s, lost_s) = (t.rider_silent_s, t.rider_lost_s);
        let now = self.shared.now_ms();
        for (timer, after_s) in [(Timer::RiderSilent, silent_s), (Timer::RiderLost, lost_s)] {
            self.timers
                .arm(timer, heard_ms, after_s, true, now, ctx, Self::on_timer);
        }
    }

    fn disarm_silence(&mut self, ctx: &mut Context<Self>) {
        self.timers.disarm_all(ctx);
    }

    /// Silence timers run while the rider is online, and while it holds an order even
    /// offline: an order must not stay parked with a rider nobody hears from.
    fn supervised(&self) -> bool {
        self.state.online || !self.state.orders.is_empty()
    }

    fn on_timer(&mut self, timer: Timer, _ctx: &mut Context<Self>) {
        self.timers.fired(timer);
        if !self.supervised() {
            return;
        }
        let before = self.state.status();
        for step in ladder::steps(timer, 1) {
            match step {
                Step::MarkRiderStale => {
                    self.state.stale = true;
                    tracing::info!(rider = %self.state.rider_id, "rider silent: stale");
                }
                Step::Escalate(kind) => {
                    if let Some(order) = self.state.orders.first() {
                        self.shared.desk.do_send(Raise {
                            kind,
                            order_id: Some(order.order_id.clone()),
                            rider_id: Some(self.state.rider_id.clone()),
                            message: format!(
                                "rider {} silent for {} s while holding {}",
                                self.state.rider_id,
                                self.shared.cfg.timers.rider_silent_s,
                                order.order_id
                            ),
                        });
                    }
                }
                Step::ReassignUnpickedOrders => {
                    let lost: Vec<OrderId> = self
                        .state
                        .orders
                        .iter()
                        .filter(|o| o.status == OrderStatus::Assigned)
                        .map(|o| o.order_id.clone())
                        .collect();
                    for order_id in lost {
                        self.state.drop_order(&order_id);
                        if let Some(addr) = self.shared.dir.order(&order_id) {
                            addr.do_send(RiderLost {
                                rider_id: self.state.rider_id.clone(),
                            });
                        }
                        self.tell(RiderNotice::Unassigned {
                            order_id,
                            reason: UnassignReason::RiderLost,
                        });
                    }
                }
                _ => {}
            }
        }
        self.settle(before, false);
    }

    fn on_location(&mut self, raw: RawFix, ctx: &mut Context<Self>) {
        let rules = GpsRules {
            max_speed_mps: self.shared.cfg.gps.max_speed_mps,
            max_future_ms: self.shared.cfg.gps.max_future_ms,
        };
        let verdict = rules.check(&raw, self.state.last_fix.as_ref(), self.shared.now_ms());
        metrics::counter!(metric_names::GPS_FIXES_TOTAL, "result" => verdict.result_label())
            .increment(1);
        match verdict {
            FixVerdict::Ignore => {}
            FixVerdict::Reject(why) => self.tell(RiderNotice::error("invalid_location", why)),
            FixVerdict::Accept(fix) => {
                let before = self.state.status();
                self.state.last_fix = Some(fix);
                self.shared
                    .store
                    .record_position(&self.state.rider_id, fix.point, fix.ts_ms);
                if self.state.stale {
                    self.state.stale = false;
                    self.shared.desk.do_send(Clear {
                        kinds: vec![EscalationKind::RiderSilent],
                        subject: Subject::Rider(self.state.rider_id.clone()),
                    });
                }
                if self.supervised() {
                    self.arm_silence(ctx);
                }
                for o in &self.state.orders {
                    if let Some(addr) = self.shared.dir.order(&o.order_id) {
                        addr.do_send(RiderMoved {
                            rider_id: self.state.rider_id.clone(),
                            fix,
                        });
                    }
                }
                self.settle(before, true);
            }
        }
    }

    /// Only accepted fixes count as being heard from: `status online` neither clears
    /// `stale` (the next fix does, and resolves the escalation with it) nor restarts
    /// silence timers that are running. A rider coming online with no timer running gets
    /// a fresh period to send its first fix.
    fn on_set_online(&mut self, online: bool, ctx: &mut Context<Self>) {
        if online == self.state.online {
            return;
        }
        let before = self.state.status();
        self.state.online = online;
        if online {
            if !self.timers.is_running(Timer::RiderSilent)
                && !self.timers.is_running(Timer::RiderLost)
            {
                self.arm_silence(ctx);
            }
        } else {
            if !self.supervised() {
                self.disarm_silence(ctx);
            }
            if let Some(offer) = self.state.offer.take() {
                self.decline_to_order(&offer);
            }
        }
        self.settle(before, false);
    }

    fn decline_to_order(&self, offer: &Offer) {
        if let Some(addr) = self.shared.dir.order(&offer.order_id) {
            addr.do_send(DeclineOffer {
                offer_id: offer.offer_id.clone(),
                rider_id: self.state.rider_id.clone(),
            });
        }
    }

    fn on_accept(&mut self, offer_id: OfferId, ctx: &mut Context<Self>) {
        let order_id = match (&self.state.offer, &self.state.won_offer) {
            (Some(o), _) if o.offer_id == offer_id => o.order_id.clone(),
            (_, Some((won, order_id))) if *won == offer_id => order_id.clone(),
            _ => {
                self.tell(RiderNotice::error(
                    "offer_not_available",
                    "no such open offer",
                ));
                return;
            }
        };
        let Some(addr) = self.shared.dir.order(&order_id) else {
            // Only the offer being accepted goes: a repeated accept of an old, won offer
            // must not cost the rider the offer it holds now.
            let before = self.state.status();
            if self
                .state
                .offer
                .as_ref()
                .is_some_and(|o| o.offer_id == offer_id)
            {
                self.state.offer = None;
            }
            self.tell(RiderNotice::error(
                "offer_not_available",
                "the order is gone",
            ));
            self.settle(before, false);
            return;
        };
        let claim = ClaimOffer {
            offer_id: offer_id.clone(),
            rider_id: self.state.rider_id.clone(),
            fix: self.state.last_fix,
        };
        ctx.spawn(
            addr.send(claim)
                .into_actor(self)
                .map(move |res, act, _ctx| {
                    let before = act.state.status();
                    let held_offer = act
                        .state
                        .offer
                        .as_ref()
                        .is_some_and(|o| o.offer_id == offer_id);
                    match res {
                        Ok(Ok(order)) => {
                            if held_offer {
                                act.state.offer = None;
                            }
                            act.state.won_offer = Some((offer_id, order.order_id.clone()));
                            act.state.update_order(order.clone());
                            act.tell(RiderNotice::Assigned { order });
                        }
                        Ok(Err(_)) | Err(_) => {
                            if held_offer {
                                act.state.offer = None;
                            }
                            act.tell(RiderNotice::error(
                                "offer_not_available",
                                "the offer is no longer open",
                            ));
                        }
                    }
                    act.settle(before, false);
                }),
        );
    }

    fn on_decline(&mut self, offer_id: OfferId) {
        match self.state.offer.take() {
            Some(o) if o.offer_id == offer_id => {
                let before = RiderStatus::Offered;
                self.decline_to_order(&o);
                metrics::counter!(metric_names::OFFERS_TOTAL, "outcome" => "declined").increment(1);
                self.settle(before, false);
            }
            other => {
                self.state.offer = other;
                self.tell(RiderNotice::error(
                    "offer_not_available",
                    "no such open offer",
                ));
            }
        }
    }

    fn on_report(&mut self, order_id: OrderId, kind: ReportKind, ctx: &mut Context<Self>) {
        if !self.state.holds(&order_id) {
            return self.refuse_report(order_id, ctx);
        }
        let Some(addr) = self.shared.dir.order(&order_id) else {
            let before = self.state.status();
            self.state.drop_order(&order_id);
            self.tell(RiderNotice::error(
                "invalid_transition",
                "the order is closed",
            ));
            self.settle(before, false);
            return;
        };
        let msg = RiderReport {
            rider_id: self.state.rider_id.clone(),
            kind: kind.clone(),
        };
        ctx.spawn(addr.send(msg).into_actor(self).map(move |res, act, _ctx| {
            let before = act.state.status();
            match res {
                Ok(Ok(order)) => {
                    act.state.update_order(order.clone());
                    if kind == ReportKind::Release {
                        act.tell(RiderNotice::Unassigned {
                            order_id: order.order_id,
                            reason: UnassignReason::Released,
                        });
                    } else {
                        act.tell(RiderNotice::OrderUpdated { order });
                    }
                }
                Ok(Err(e)) => act.tell(RiderNotice::error(e.code(), e.to_string())),
                Err(e) => act.tell(RiderNotice::error("invalid_transition", e.to_string())),
            }
            act.settle(before, false);
        }));
    }
}

impl RiderActor {
    /// A report on an order the rider does not hold. If the rider held it and it is now
    /// final (delivered, failed, also by a dispatcher), the state answers first:
    /// `invalid_transition`, as for any command on a final order. Otherwise `forbidden`.
    fn refuse_report(&mut self, order_id: OrderId, ctx: &mut Context<Self>) {
        let live = self.shared.dir.order(&order_id);
        let store = self.shared.store.clone();
        let id = order_id.clone();
        let lookup = async move {
            match live {
                Some(addr) => addr.send(GetOrder).await.ok(),
                None => store.load_order(&id).await.ok().flatten(),
            }
        };
        ctx.spawn(lookup.into_actor(self).map(move |order, act, _| {
            let me = &act.state.rider_id;
            let notice = match order {
                Some(o) if o.status.is_final() && o.rider_id.as_ref() == Some(me) => {
                    RiderNotice::error(
                        "invalid_transition",
                        format!("order {order_id} is {} and cannot change", o.status),
                    )
                }
                _ => RiderNotice::error("forbidden", format!("{order_id} is not assigned to you")),
            };
            act.tell(notice);
        }));
    }
}

impl Actor for RiderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.settle(RiderStatus::Offline, false);
        if let Some(heard) = self.restored_heard_ms.take() {
            if self.supervised() {
                self.arm_silence_from(heard, ctx);
            }
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Some(s) = self.gauge_status {
            metrics::gauge!(metric_names::RIDERS, "status" => s.as_str()).decrement(1.0);
        }
    }
}

// ---- messages from the rider's session ----

impl Handler<AttachSession> for RiderActor {
    type Result = ();
    fn handle(&mut self, m: AttachSession, _: &mut Context<Self>) {
        if let Some(old) = self.session.take() {
            old.close();
        }
        self.session = Some(m.0);
        let welcome = RiderNotice::Welcome {
            rider_id: self.state.rider_id.clone(),
            status: self.state.status(),
            location_interval_s: self.shared.cfg.gps.interval_s,
            orders: self.state.orders.clone(),
            offer: self.state.offer.clone(),
        };
        self.tell(welcome);
    }
}

impl Handler<DetachSession> for RiderActor {
    type Result = ();
    fn handle(&mut self, m: DetachSession, _: &mut Context<Self>) {
        if self.session.as_ref().is_some_and(|s| s.same(&m.0)) {
            self.session = None;
        }
    }
}

impl Handler<FromRider> for RiderActor {
    type Result = ();
    fn handle(&mut self, m: FromRider, ctx: &mut Context<Self>) {
        match m.0 {
            RiderCommand::Location(raw) => self.on_location(raw, ctx),
            RiderCommand::SetOnline(on) => self.on_set_online(on, ctx),
            RiderCommand::Accept { offer_id } => self.on_accept(offer_id, ctx),
            RiderCommand::Decline { offer_id } => self.on_decline(offer_id),
            RiderCommand::PickedUp { order_id } => {
                self.on_report(order_id, ReportKind::PickedUp, ctx)
            }
            RiderCommand::Delivered { order_id } => {
                self.on_report(order_id, ReportKind::Delivered, ctx)
            }
            RiderCommand::Failed { order_id, reason } => {
                self.on_report(order_id, ReportKind::Failed(reason), ctx)
            }
            RiderCommand::Release { order_id } => {
                self.on_report(order_id, ReportKind::Release, ctx)
            }
        }
    }
}

impl Handler<GetRider> for RiderActor {
    type Result = MessageResult<GetRider>;
    fn handle(&mut self, _: GetRider, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state.view())
    }
}

// ---- messages from order actors ----

impl Handler<ProposeOffer> for RiderActor {
    type Result = bool;
    fn handle(&mut self, m: ProposeOffer, _: &mut Context<Self>) -> bool {
        if !self.state.available_for_offers() {
            return false;
        }
        let before = self.state.status();
        self.state.offer = Some(m.0.clone());
        self.tell(RiderNotice::Offer(m.0));
        self.settle(before, false);
        true
    }
}

impl Handler<CloseOffer> for RiderActor {
    type Result = ();
    fn handle(&mut self, m: CloseOffer, _: &mut Context<Self>) {
        if self
            .state
            .offer
            .as_ref()
            .is_some_and(|o| o.offer_id == m.offer_id)
        {
            let before = self.state.status();
            self.state.offer = None;
            self.tell(RiderNotice::OfferClosed {
                offer_id: m.offer_id,
                reason: m.reason,
            });
            self.settle(before, false);
        }
    }
}

impl Handler<OrderAssigned> for RiderActor {
    type Result = ();
    fn handle(&mut self, m: OrderAssigned, _: &mut Context<Self>) {
        let before = self.state.status();
        self.state.update_order(m.0.clone());
        self.tell(RiderNotice::Assigned { order: m.0 });
        self.settle(before, false);
    }
}

impl Handler<OrderUnassigned> for RiderActor {
    type Result = ();
    fn handle(&mut self, m: OrderUnassigned, _: &mut Context<Self>) {
        let before = self.state.status();
        if self.state.drop_order(&m.order_id) {
            self.tell(RiderNotice::Unassigned {
                order_id: m.order_id,
                reason: m.reason,
            });
        }
        self.settle(before, false);
    }
}

impl Handler<OrderCancelled> for RiderActor {
    type Result = ();
    fn handle(&mut self, m: OrderCancelled, _: &mut Context<Self>) {
        let before = self.state.status();
        if self.state.drop_order(&m.0) {
            self.tell(RiderNotice::OrderCancelled { order_id: m.0 });
        }
        self.settle(before, false);
    }
}

impl Handler<OrderChanged> for RiderActor {
    type Result = ();
    fn handle(&mut self, m: OrderChanged, _: &mut Context<Self>) {
        let before = self.state.status();
        if self.state.holds(&m.0.order_id) {
            self.state.update_order(m.0.clone());
            self.tell(RiderNotice::OrderUpdated { order: m.0 });
        }
        self.settle(before, false);
    }
}

impl Handler<RemindRider> for RiderActor {
    type Result = ();
    fn handle(&mut self, m: RemindRider, _: &mut Context<Self>) {
        self.tell(RiderNotice::Reminder {
            order_id: m.order_id,
            message: m.message,
        });
    }
}

impl Handler<CheckAssignable> for RiderActor {
    type Result = Result<Option<GpsFix>, EngineError>;
    fn handle(&mut self, _: CheckAssignable, _: &mut Context<Self>) -> Self::Result {
        match self.state.status() {
            RiderStatus::Offline | RiderStatus::Stale => {
                Err(EngineError::RiderUnavailable(format!(
                    "rider {} is {}",
                    self.state.rider_id,
                    self.state.status().as_str()
                )))
            }
            _ if !self.connected() => Err(EngineError::RiderUnavailable(format!(
                "rider {} is not connected",
                self.state.rider_id
            ))),
            _ => Ok(self.state.last_fix),
        }
    }
}
