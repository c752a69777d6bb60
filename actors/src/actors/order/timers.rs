//! The order's supervisor timers (merchant_accept, dispatch_remind, pickup_late,
//! delivery_timeout) and what each expiry does: the steps of the escalation ladder
//! (`domain::ladder`), carried out here.

use super::notices::ToRider;
use super::OrderActor;
use crate::domain::escalation::EscalationKind;
use crate::domain::ladder::{self, Step, Timer};
use crate::domain::order::{Actor as By, OrderCommand, OrderStatus};
use crate::events::Event;
use crate::protocol::RemindRider;
use actix::prelude::*;

impl OrderActor {
    /// Arms `timer` to fire `delay_s` after `from_ms`, keeping its fire count unless `reset`.
    pub(super) fn arm(
        &mut self,
        timer: Timer,
        from_ms: u64,
        delay_s: f64,
        reset: bool,
        ctx: &mut Context<Self>,
    ) {
        let now = self.now();
        self.timers
            .arm(timer, from_ms, delay_s, reset, now, ctx, Self::on_timer);
    }

    /// Pickup is late `pickup_late_s` after the later of food-ready and the (latest)
    /// assignment. `on_ready`: the merchant pressed ready while the order is assigned — the
    /// deadline may only move earlier, and only before its first period fired.
    pub(super) fn arm_pickup_late(&mut self, on_ready: bool, ctx: &mut Context<Self>) {
        let now = self.now();
        let assigned = self
            .assigned_ms
            .or_else(|| self.order.entered_ms(OrderStatus::Assigned))
            .unwrap_or(now);
        let from = self.order.ready_at_ms.unwrap_or(assigned).max(assigned);
        let due = from + (self.shared.cfg.timers.pickup_late_s * 1000.0) as u64;
        if on_ready {
            match self.timers.get(Timer::PickupLate) {
                Some((due_ms, 0)) if due < due_ms => {}
                _ => return,
            }
        }
        self.arm(Timer::PickupLate, due, 0.0, !on_ready, ctx);
    }

    pub(super) fn on_timer(&mut self, timer: Timer, ctx: &mut Context<Self>) {
        let Some(fired) = self.timers.fired(timer) else {
            return;
        };
        let cfg = self.shared.cfg.timers.clone();
        let id = self.order.order_id.clone();
        for step in ladder::steps(timer, fired) {
            match step {
                Step::RemindMerchant => self.announce(Event::MerchantReminded {
                    merchant_id: self.order.merchant_id.clone(),
                    order_id: id.clone(),
                    message: format!("order {id} is waiting to be accepted"),
                }),
                Step::RemindRider => {
                    if let Some(r) = self.order.rider_id.clone() {
                        let message = match timer {
                            Timer::PickupLate => format!("pickup of {id} is late"),
                            _ => format!("delivery of {id} is late"),
                        };
                        self.tell_rider(
                            &r,
                            ToRider::Remind(RemindRider {
                                order_id: id.clone(),
                                message,
                            }),
                        );
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
                    // Only a paid order (no rider yet) gets here: nobody else to tell.
                    if let Err(e) = self.change(cmd, ctx) {
                        tracing::warn!(%e, order = %id, "order not cancelled");
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
                    if let Some((due, _)) = self.timers.get(timer) {
                        self.arm(timer, due, period, false, ctx);
                    }
                }
                Step::ExpireOffer
                | Step::OfferNextCandidate
                | Step::MarkRiderStale
                | Step::ReassignUnpickedOrders => {}
            }
        }
        // Fired counts and new due times must survive a restart; reminders go out once
        // they are stored.
        self.persist_in_background(ctx);
    }
}
