//! One actor per rider, alive as long as the rider exists. A WebSocket session attaches an
//! [`Outbox`] and detaches on disconnect, so a reconnect finds the rider's state (orders in
//! hand, an open offer) intact. Everything the rider is told goes through that outbox.

use super::desk::{Clear, Raise};
use super::matcher::{RemoveRider, UpsertRider};
use super::order::{ClaimOffer, DeclineOffer, ReportKind, RiderLost, RiderMoved, RiderReport};
use super::Shared;
use crate::config::secs;
use crate::domain::escalation::{EscalationKind, Subject};
use crate::domain::gps::{FixVerdict, GpsFix, GpsRules, RawFix};
use crate::domain::ladder::{self, Step, Timer};
use crate::domain::offers::{Offer, OfferCloseReason};
use crate::domain::order::{Order, OrderStatus};
use crate::domain::rider::{RiderState, RiderStatus, RiderView};
use crate::domain::{GeoPoint, OfferId, OrderId};
use crate::error::EngineError;
use crate::events::Event;
use crate::metric_names;
use crate::outbox::{Outbox, PushOutcome};
use actix::prelude::*;
use serde::Serialize;
use std::sync::Arc;

/// Why an order was taken from a rider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnassignReason {
    Reassigned,
    RiderLost,
    Released,
    Dispatcher,
}

/// What the rider app is told (PROTOCOL.md, "Server → rider").
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RiderNotice {
    Welcome {
        rider_id: crate::domain::RiderId,
        status: RiderStatus,
        location_interval_s: f64,
        orders: Vec<Order>,
        offer: Option<Offer>,
    },
    Offer(Offer),
    Assigned {
        order: Order,
    },
    OrderUpdated {
        order: Order,
    },
    OfferClosed {
        offer_id: OfferId,
        reason: OfferCloseReason,
    },
    OrderCancelled {
        order_id: OrderId,
    },
    Unassigned {
        order_id: OrderId,
        reason: UnassignReason,
    },
    Reminder {
        order_id: OrderId,
        message: String,
    },
    Error {
        code: String,
        message: String,
    },
}

impl RiderNotice {
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        RiderNotice::Error {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// What the rider app says (PROTOCOL.md, "Rider → server"), already parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum RiderCommand {
    Location(RawFix),
    SetOnline(bool),
    Accept { offer_id: OfferId },
    Decline { offer_id: OfferId },
    PickedUp { order_id: OrderId },
    Delivered { order_id: OrderId },
    Failed { order_id: OrderId, reason: String },
    Release { order_id: OrderId },
}

pub struct RiderActor {
    state: RiderState,
    shared: Arc<Shared>,
    session: Option<Outbox<RiderNotice>>,
    silent_timer: Option<SpawnHandle>,
    lost_timer: Option<SpawnHandle>,
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
            silent_timer: None,
            lost_timer: None,
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
        self.disarm_silence(ctx);
        let t = &self.shared.cfg.timers;
        self.silent_timer = Some(ctx.run_later(secs(t.rider_silent_s), |act, ctx| {
            act.silent_timer = None;
            act.on_timer(Timer::RiderSilent, ctx);
        }));
        self.lost_timer = Some(ctx.run_later(secs(t.rider_lost_s), |act, ctx| {
            act.lost_timer = None;
            act.on_timer(Timer::RiderLost, ctx);
        }));
    }

    /// Silence timers counted from `heard_ms` rather than now (recovery).
    fn arm_silence_from(&mut self, heard_ms: u64, ctx: &mut Context<Self>) {
        self.disarm_silence(ctx);
        let t = &self.shared.cfg.timers;
        let now = self.shared.now_ms();
        let left = |s: f64| {
            let due = heard_ms + (s.max(0.0) * 1000.0) as u64;
            std::time::Duration::from_millis(due.saturating_sub(now))
        };
        let (silent, lost) = (left(t.rider_silent_s), left(t.rider_lost_s));
        self.silent_timer = Some(ctx.run_later(silent, |act, ctx| {
            act.silent_timer = None;
            act.on_timer(Timer::RiderSilent, ctx);
        }));
        self.lost_timer = Some(ctx.run_later(lost, |act, ctx| {
            act.lost_timer = None;
            act.on_timer(Timer::RiderLost, ctx);
        }));
    }

    fn disarm_silence(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.silent_timer.take() {
            ctx.cancel_future(h);
        }
        if let Some(h) = self.lost_timer.take() {
            ctx.cancel_future(h);
        }
    }

    /// Silence timers run while the rider is online, and while it holds an order even
    /// offline: an order must not stay parked with a rider nobody hears from.
    fn supervised(&self) -> bool {
        self.state.online || !self.state.orders.is_empty()
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Context<Self>) {
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
        let _ = ctx;
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
            if self.silent_timer.is_none() && self.lost_timer.is_none() {
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
            self.tell(RiderNotice::error(
                "forbidden",
                format!("{order_id} is not assigned to you"),
            ));
            return;
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

/// Attaches a session; the rider's `welcome` is its first frame. A second session replaces
/// (closes) the first.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachSession(pub Outbox<RiderNotice>);

#[derive(Message)]
#[rtype(result = "()")]
pub struct DetachSession(pub Outbox<RiderNotice>);

#[derive(Message)]
#[rtype(result = "()")]
pub struct FromRider(pub RiderCommand);

#[derive(Message)]
#[rtype(result = "RiderView")]
pub struct GetRider;

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

/// An order proposes an offer; the rider takes it only when idle. Returns whether it did.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct ProposeOffer(pub Offer);

#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseOffer {
    pub offer_id: OfferId,
    pub reason: OfferCloseReason,
}

/// The dispatcher gave this rider an order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct OrderAssigned(pub Order);

#[derive(Message)]
#[rtype(result = "()")]
pub struct OrderUnassigned {
    pub order_id: OrderId,
    pub reason: UnassignReason,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct OrderCancelled(pub OrderId);

/// A change the rider should see (ready, failed by the dispatcher…).
#[derive(Message)]
#[rtype(result = "()")]
pub struct OrderChanged(pub Order);

#[derive(Message)]
#[rtype(result = "()")]
pub struct RemindRider {
    pub order_id: OrderId,
    pub message: String,
}

/// May the dispatcher assign this rider an order? (connected, online, not stale)
/// Answers the rider's last accepted fix.
#[derive(Message)]
#[rtype(result = "Result<Option<GpsFix>, EngineError>")]
pub struct CheckAssignable;

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
