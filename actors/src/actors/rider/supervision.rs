//! A rider's silence timers: `rider_silent` (stale: no offers, escalate if it holds an
//! order) and `rider_lost` (orders not yet picked up are dispatched again), counted from
//! the last accepted fix.
//!
//! A fix arrives every ~10 s from every online rider; re-arming two timers on each (two
//! cancellations, two new timer entries) was a measurable share of GPS intake. So a fix
//! only records when the rider was heard from (`heard`); a timer that fires while the
//! rider has been heard from since it was armed re-arms itself for the rest of its period
//! and does nothing else. The timers still fire at exactly `heard + period`.

use super::RiderActor;
use crate::actors::remote::wire::OrderMsg;

use crate::actors::desk::Raise;
use crate::domain::ladder::{self, Step, Timer};
use crate::domain::order::OrderStatus;
use crate::domain::OrderId;
use crate::protocol::{RiderNotice, UnassignReason};
use actix::prelude::*;

impl RiderActor {
    pub(super) fn arm_silence(&mut self, ctx: &mut Context<Self>) {
        let now = self.shared.now_ms();
        self.arm_silence_from(now, ctx);
    }

    /// The rider was heard from now (an accepted fix). While both silence timers are
    /// running they are left alone: each checks `heard_ms` when it fires.
    pub(super) fn heard(&mut self, ctx: &mut Context<Self>) {
        if self.timers.is_running(Timer::RiderSilent) && self.timers.is_running(Timer::RiderLost) {
            self.heard_ms = self.shared.now_ms();
        } else {
            self.arm_silence(ctx);
        }
    }

    /// Silence timers counted from `heard_ms`, the last time the rider was heard from
    /// (now, or its last fix after a restart: then one already past fires at once).
    pub(super) fn arm_silence_from(&mut self, heard_ms: u64, ctx: &mut Context<Self>) {
        self.heard_ms = heard_ms;
        let t = &self.shared.cfg.timers;
        let (silent_s, lost_s) = (t.rider_silent_s, t.rider_lost_s);
        let now = self.shared.now_ms();
        for (timer, after_s) in [(Timer::RiderSilent, silent_s), (Timer::RiderLost, lost_s)] {
            self.timers
                .arm(timer, heard_ms, after_s, true, now, ctx, Self::on_timer);
        }
    }

    pub(super) fn disarm_silence(&mut self, ctx: &mut Context<Self>) {
        self.timers.disarm_all(ctx);
    }

    /// Silence timers run while the rider is online, and while it holds an order even
    /// offline: an order must not stay parked with a rider nobody hears from.
    pub(super) fn supervised(&self) -> bool {
        self.state.online || !self.state.orders.is_empty()
    }

    /// How long after the last fix `timer` fires.
    fn silence_period_s(&self, timer: Timer) -> f64 {
        let t = &self.shared.cfg.timers;
        match timer {
            Timer::RiderLost => t.rider_lost_s,
            _ => t.rider_silent_s,
        }
    }

    pub(super) fn on_timer(&mut self, timer: Timer, ctx: &mut Context<Self>) {
        self.timers.fired(timer);
        if !self.supervised() {
            return;
        }
        let period_s = self.silence_period_s(timer);
        let now = self.shared.now_ms();
        if self.heard_ms + (period_s.max(0.0) * 1000.0) as u64 > now {
            // Heard from since this timer was armed: not silent. Count again from then.
            self.timers.arm(
                timer,
                self.heard_ms,
                period_s,
                true,
                now,
                ctx,
                Self::on_timer,
            );
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
                        if let Some(order) = self.shared.order_ref(&order_id) {
                            order.tell(OrderMsg::RiderLost {
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
}
