//! The messages a RiderActor answers (defined in `crate::protocol`): from its session,
//! and from order actors and the engine.

use super::RiderActor;
use crate::actors::remote::wire::OrderMsg;

use crate::actors::matcher::DrainFeed;
use crate::domain::gps::GpsFix;
use crate::domain::offers::OfferCloseReason;
use crate::domain::rider::RiderStatus;
use crate::error::EngineError;
use crate::matcher::feed::Change;
use crate::protocol::HandOver;
use crate::protocol::{
    AttachSession, CheckAssignable, CloseOffer, DetachSession, FixAhead, FixOrigin, FixWaiting,
    FromRider, GetRider, OrderAssigned, OrderCancelled, OrderChanged, OrderUnassigned,
    ProposeOffer, RemindRider, ReportKind, RiderCommand, RiderNotice,
};
use actix::prelude::*;

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
            // A bundle is shown once every order of it has proposed it.
            offer: self
                .state
                .offer
                .clone()
                .filter(|_| self.awaiting_legs.is_empty()),
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
            RiderCommand::Location(raw) => self.on_location(raw, FixOrigin::Socket, ctx),
            RiderCommand::SetOnline(on) => self.on_set_online(on, ctx),
            RiderCommand::Shift { end_ms } => {
                let before = self.state.status();
                self.state.shift_end_ms = end_ms;
                self.settle(before, false);
            }
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

impl Handler<FixWaiting> for RiderActor {
    type Result = ();
    fn handle(&mut self, m: FixWaiting, ctx: &mut Context<Self>) {
        // The slot's lock is let go before the fix is applied: the socket side only ever
        // waits for these few instructions, never for validation or settling.
        let fix = self.fixes.lock().take(m.0);
        if let Some(p) = fix {
            self.on_location(p.raw, p.origin, ctx);
        }
    }
}

impl Handler<FixAhead> for RiderActor {
    type Result = ();
    fn handle(&mut self, m: FixAhead, ctx: &mut Context<Self>) {
        self.on_location(m.0.raw, m.0.origin, ctx);
    }
}

impl Handler<HandOver> for RiderActor {
    type Result = MessageResult<HandOver>;
    fn handle(&mut self, _: HandOver, ctx: &mut Context<Self>) -> Self::Result {
        if self.in_matcher.take().is_some() {
            let change = Change::Remove(self.state.rider_id.clone());
            if self.shared.peers.get().is_some() {
                self.shared.fleet.put(&change);
            }
            if self.shared.matcher_feed.put(change) {
                self.shared.matcher.do_send(DrainFeed);
            }
        }
        if let Some(s) = self.session.take() {
            s.close();
        }
        self.timers.disarm_all(ctx);
        let id = &self.state.rider_id;
        self.shared.dir.riders.write().remove(id);
        self.shared.dir.rider_fixes.write().remove(id);
        ctx.stop();
        MessageResult(self.state.clone())
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
        let (offer, proposer) = (m.0, m.1);
        let same = self
            .state
            .offer
            .as_ref()
            .is_some_and(|o| o.offer_id == offer.offer_id);
        if same {
            // Another order of the bundle this rider holds.
            if !self.awaiting_legs.is_empty() {
                self.awaiting_legs.remove(&proposer);
                if self.awaiting_legs.is_empty() {
                    let shown = self.state.offer.clone().expect("held");
                    self.tell(RiderNotice::Offer(shown));
                }
            }
            return true;
        }
        if !self.may_hold_offer() {
            return false;
        }
        let before = self.state.status();
        // Every order of the offer proposes it; the first to arrive names them all.
        self.awaiting_legs = offer.order_ids().into_iter().collect();
        self.awaiting_legs.remove(&proposer);
        self.state.offer = Some(offer.clone());
        if self.awaiting_legs.is_empty() {
            self.tell(RiderNotice::Offer(offer));
        }
        self.settle(before, false);
        true
    }
}

impl Handler<CloseOffer> for RiderActor {
    type Result = ();
    fn handle(&mut self, m: CloseOffer, _: &mut Context<Self>) {
        let Some(offer) = self
            .state
            .offer
            .clone()
            .filter(|o| o.offer_id == m.offer_id)
        else {
            return;
        };
        // One order of a bundle closing closes the whole offer: the rest go back to
        // dispatch (docs/protocol.md: a cancelled order withdraws the offer).
        let reason = if offer.is_bundle() && m.reason == OfferCloseReason::Cancelled {
            OfferCloseReason::Withdrawn
        } else {
            m.reason
        };
        if offer.is_bundle() {
            for id in offer.order_ids() {
                if let Some(order) = self.shared.order_ref(&id) {
                    order.tell(OrderMsg::LegClosed {
                        offer_id: offer.offer_id.clone(),
                        rider_id: self.state.rider_id.clone(),
                        reason,
                    });
                }
            }
        }
        // A bundle the rider never saw (an order dropped out first) closes silently.
        let seen = std::mem::take(&mut self.awaiting_legs).is_empty();
        self.update(|s| {
            s.offer = None;
            seen.then_some(RiderNotice::OfferClosed {
                offer_id: m.offer_id,
                reason,
            })
        });
    }
}

impl Handler<OrderAssigned> for RiderActor {
    type Result = ();
    fn handle(&mut self, m: OrderAssigned, _: &mut Context<Self>) {
        self.update(|s| {
            s.update_order(m.0.clone());
            Some(RiderNotice::Assigned { order: m.0 })
        });
    }
}

impl Handler<OrderUnassigned> for RiderActor {
    type Result = ();
    fn handle(&mut self, m: OrderUnassigned, _: &mut Context<Self>) {
        self.update(|s| {
            s.drop_order(&m.order_id)
                .then_some(RiderNotice::Unassigned {
                    order_id: m.order_id,
                    reason: m.reason,
                })
        });
    }
}

impl Handler<OrderCancelled> for RiderActor {
    type Result = ();
    fn handle(&mut self, m: OrderCancelled, _: &mut Context<Self>) {
        self.update(|s| {
            s.drop_order(&m.0)
                .then_some(RiderNotice::OrderCancelled { order_id: m.0 })
        });
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
