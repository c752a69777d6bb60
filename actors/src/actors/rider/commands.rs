//! What the rider app says, already parsed (`RiderCommand`): GPS fixes through the
//! validator, going online or offline, answering offers, reporting on orders in hand.

use super::RiderActor;
use crate::actors::remote::wire::OrderMsg;

use crate::actors::desk::Clear;
use crate::domain::escalation::{EscalationKind, Subject};
use crate::domain::gps::{FixVerdict, GpsRules, RawFix};
use crate::domain::ladder::Timer;
use crate::domain::offers::Offer;
use crate::domain::order::Order;
use crate::domain::{OfferId, OrderId};
use crate::metric_names;
use crate::protocol::{FixOrigin, ReportKind, RiderNotice, UnassignReason};
use actix::prelude::*;

impl RiderActor {
    /// A fix, from the rider socket or a tracking app (`origin`): one validator, one
    /// way of applying it, whichever way it came.
    pub(super) fn on_location(&mut self, raw: RawFix, origin: FixOrigin, ctx: &mut Context<Self>) {
        let rules = GpsRules {
            max_speed_mps: self.shared.cfg.gps.max_speed_mps,
            max_future_ms: self.shared.cfg.gps.max_future_ms,
        };
        let verdict = rules.check(&raw, self.state.last_fix.as_ref(), self.shared.now_ms());
        metrics::counter!(metric_names::GPS_FIXES_TOTAL, "result" => verdict.result_label())
            .increment(1);
        let (reply, go_online) = match origin {
            FixOrigin::Socket => (None, false),
            FixOrigin::Tracker { verdict, go_online } => (Some(verdict), go_online),
        };
        match &verdict {
            FixVerdict::Ignore => {}
            FixVerdict::Reject(why) => {
                if reply.is_none() {
                    self.tell(RiderNotice::error("invalid_location", why.clone()));
                }
            }
            FixVerdict::Accept(fix) => {
                let fix = *fix;
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
                    self.heard(ctx);
                }
                for o in &self.state.orders {
                    if let Some(order) = self.shared.order_ref(&o.order_id) {
                        order.tell(OrderMsg::RiderMoved {
                            rider_id: self.state.rider_id.clone(),
                            fix,
                        });
                    }
                }
                self.settle(before, true);
                if go_online && !self.state.online {
                    self.on_set_online(true, ctx);
                }
            }
        }
        if let Some(reply) = reply {
            // The caller may have given up waiting: nothing to do then.
            let _ = reply.send(verdict);
        }
    }

    /// Only accepted fixes count as being heard from: `status online` neither clears
    /// `stale` (the next fix does, and resolves the escalation with it) nor restarts
    /// silence timers that are running. A rider coming online with no timer running gets
    /// a fresh period to send its first fix.
    pub(super) fn on_set_online(&mut self, online: bool, ctx: &mut Context<Self>) {
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
                self.awaiting_legs.clear();
                self.decline_to_order(&offer);
            }
        }
        self.settle(before, false);
    }

    /// Every order of the offer hears the decline (each remembers it).
    pub(super) fn decline_to_order(&self, offer: &Offer) {
        for order_id in offer.order_ids() {
            if let Some(order) = self.shared.order_ref(&order_id) {
                order.tell(OrderMsg::Decline {
                    offer_id: offer.offer_id.clone(),
                    rider_id: self.state.rider_id.clone(),
                });
            }
        }
    }

    /// Accepting claims every order of the offer (a bundle: each in drop-off sequence);
    /// the rider hears `assigned` for each it won, in that sequence.
    pub(super) fn on_accept(&mut self, offer_id: OfferId, ctx: &mut Context<Self>) {
        let orders = match (&self.state.offer, &self.state.won_offer) {
            (Some(o), _) if o.offer_id == offer_id && self.awaiting_legs.is_empty() => {
                o.order_ids()
            }
            (_, Some((won, order_ids))) if *won == offer_id => order_ids.clone(),
            _ => {
                self.tell(RiderNotice::error(
                    "offer_not_available",
                    "no such open offer",
                ));
                return;
            }
        };
        let claims: Vec<_> = orders
            .iter()
            .map(|order_id| {
                let claim = OrderMsg::Claim {
                    offer_id: offer_id.clone(),
                    rider_id: self.state.rider_id.clone(),
                    fix: self.state.last_fix,
                };
                let asked = self.shared.order_ref(order_id).map(|o| o.ask_order(claim));
                async move {
                    match asked {
                        Some(answer) => answer.await.ok(),
                        None => None,
                    }
                }
            })
            .collect();
        ctx.spawn(futures_util::future::join_all(claims).into_actor(self).map(
            move |results, act, _ctx| {
                let before = act.state.status();
                // Only the offer being accepted goes: a repeated accept of an old, won
                // offer must not cost the rider the offer it holds now.
                if act
                    .state
                    .offer
                    .as_ref()
                    .is_some_and(|o| o.offer_id == offer_id)
                {
                    act.state.offer = None;
                }
                let won: Vec<Order> = results.into_iter().flatten().collect();
                if !won.is_empty() {
                    let ids = won.iter().map(|o| o.order_id.clone()).collect();
                    act.state.won_offer = Some((offer_id, ids));
                } else {
                    act.tell(RiderNotice::error(
                        "offer_not_available",
                        "the offer is no longer open",
                    ));
                }
                for order in won {
                    act.state.update_order(order.clone());
                    act.tell(RiderNotice::Assigned { order });
                }
                act.settle(before, false);
            },
        ));
    }

    pub(super) fn on_decline(&mut self, offer_id: OfferId) {
        match self.state.offer.take() {
            Some(o) if o.offer_id == offer_id => {
                let before = self.state.status();
                self.awaiting_legs.clear();
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

    pub(super) fn on_report(
        &mut self,
        order_id: OrderId,
        kind: ReportKind,
        ctx: &mut Context<Self>,
    ) {
        if !self.state.holds(&order_id) {
            return self.refuse_report(order_id, kind, ctx);
        }
        let Some(order) = self.shared.order_ref(&order_id) else {
            self.update(|s| {
                s.drop_order(&order_id);
                Some(RiderNotice::error(
                    "invalid_transition",
                    "the order is closed",
                ))
            });
            return;
        };
        let msg = OrderMsg::Report {
            rider_id: self.state.rider_id.clone(),
            report: kind.clone(),
        };
        ctx.spawn(order.ask_order_in(&self.shared, msg).into_actor(self).map(
            move |res, act, _ctx| {
                let before = act.state.status();
                match res {
                    Ok(order) => {
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
                    Err(e) => act.tell(RiderNotice::error(e.code(), e.to_string())),
                }
                act.settle(before, false);
            },
        ));
    }

    /// A report on an order the rider does not hold. If the rider held it and it is now
    /// final (delivered, failed, also by a dispatcher), the state answers first:
    /// `invalid_transition`, as for any command on a final order. If the order is live and
    /// names this rider, this actor lost track of it (rebuilt on another node after its
    /// own died, before the rider's record had the order): it takes the order back and
    /// the report goes on. Otherwise `forbidden`.
    pub(super) fn refuse_report(
        &mut self,
        order_id: OrderId,
        kind: ReportKind,
        ctx: &mut Context<Self>,
    ) {
        let live = self
            .shared
            .order_ref(&order_id)
            .map(|o| o.ask_order(OrderMsg::Get));
        let store = self.shared.store.clone();
        let id = order_id.clone();
        let lookup = async move {
            // Where it was last known may be a node that died: the store then.
            if let Some(answer) = live {
                if let Ok(o) = answer.await {
                    return Some(o);
                }
            }
            store.load_order(&id).await.ok().flatten()
        };
        ctx.spawn(lookup.into_actor(self).map(move |order, act, ctx| {
            let mine = order
                .as_ref()
                .filter(|o| o.rider_id.as_ref() == Some(&act.state.rider_id));
            if let Some(o) = mine {
                let before = act.state.status();
                act.state.update_order(o.clone());
                if act.state.holds(&order_id) {
                    act.settle(before, false);
                    return act.on_report(order_id, kind, ctx);
                }
            }
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
