//! The messages an OrderActor answers (defined in `crate::protocol`). Each handler
//! applies its change, queues what it announces, and answers only once the change is
//! stored (`persist`).

use super::notices::ToRider;
use super::{transition_error, OrderActor, ARRIVING_S};
use crate::domain::offers::{ClaimError, OfferCloseReason};
use crate::domain::order::{Actor as By, Order, OrderCommand, OrderStatus, TransitionError};
use crate::domain::GeoPoint;
use crate::error::EngineError;
use crate::events::Event;
use crate::metric_names;
use crate::protocol::{
    AssignByDispatcher, ClaimOffer, Command, DeclineOffer, GetOrder, GetTrace, OrderAssigned,
    OrderCancelled, OrderChanged, OrderUnassigned, Relinquish, RelinquishIn, ReportKind, RiderLost,
    RiderMoved, RiderReport, UnassignReason, WasOffered,
};
use actix::prelude::*;

type Answer = ResponseActFuture<OrderActor, Result<Order, EngineError>>;

fn refuse(e: EngineError) -> Answer {
    Box::pin(fut::ready(Err(e)))
}

impl Handler<Relinquish> for OrderActor {
    type Result = ();
    fn handle(&mut self, _: Relinquish, ctx: &mut Context<Self>) {
        tracing::warn!(order = %self.order.order_id, "order moved by another engine: actor stops");
        self.timers.disarm_all(ctx);
        for (_, h) in self.offer_timers.drain() {
            ctx.cancel_future(h);
        }
        self.outgoing.clear();
        self.dispatch_gen += 1;
        ctx.stop();
    }
}

impl Handler<RelinquishIn> for OrderActor {
    type Result = ();
    fn handle(&mut self, m: RelinquishIn, ctx: &mut Context<Self>) {
        let Some(zones) = self.shared.zones.get() else {
            return;
        };
        let Ok(at) = GeoPoint::new(self.order.pickup.lat, self.order.pickup.lon) else {
            return;
        };
        if zones.zoning.zone_of(at) == m.0 {
            // Unlisted at once: the zone may come back before this actor has stopped.
            self.unlist(ctx);
            <Self as Handler<Relinquish>>::handle(self, Relinquish, ctx);
        }
    }
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
        MessageResult(self.offers.trace())
    }
}

impl Handler<Command> for OrderActor {
    type Result = Answer;
    fn handle(&mut self, m: Command, ctx: &mut Context<Self>) -> Self::Result {
        let cmd = m.0;
        let is_ready = cmd == OrderCommand::MarkReady;
        let is_fail = matches!(cmd, OrderCommand::Fail { .. });
        let is_unassign = cmd == OrderCommand::Unassign;
        let t = match self.change(cmd, ctx) {
            Ok(t) => t,
            Err(e) => return refuse(e),
        };
        let id = self.order.order_id.clone();
        if let Some(prev) = &t.previous_rider {
            if t.to == OrderStatus::Cancelled {
                self.tell_rider(prev, ToRider::Cancelled(OrderCancelled(id.clone())));
            } else if is_unassign {
                self.tell_rider(
                    prev,
                    ToRider::Unassigned(OrderUnassigned {
                        order_id: id.clone(),
                        reason: UnassignReason::Dispatcher,
                    }),
                );
                self.trace(format!("{prev} unassigned by the dispatcher"), vec![]);
            }
        }
        if (is_ready && t.changed) || is_fail {
            if let Some(rider) = self.order.rider_id.clone() {
                self.tell_rider(&rider, ToRider::Changed(OrderChanged(self.snapshot())));
            }
        }
        self.persist()
    }
}

impl Handler<AssignByDispatcher> for OrderActor {
    type Result = Answer;
    fn handle(&mut self, m: AssignByDispatcher, ctx: &mut Context<Self>) -> Self::Result {
        let previous_fix = std::mem::replace(&mut self.rider_fix, m.fix);
        let t = match self.assign_by_dispatcher(m.rider_id.clone(), ctx) {
            Ok(t) => t,
            Err(e) => {
                self.rider_fix = previous_fix;
                return refuse(e);
            }
        };
        // The riders hear of it only once it is stored (a lost compare-and-set tells no one).
        if let Some(prev) = &t.previous_rider {
            self.tell_rider(
                prev,
                ToRider::Unassigned(OrderUnassigned {
                    order_id: self.order.order_id.clone(),
                    reason: UnassignReason::Reassigned,
                }),
            );
        }
        if t.changed {
            self.tell_rider(
                &m.rider_id,
                ToRider::Assigned(OrderAssigned(self.snapshot())),
            );
        }
        self.persist()
    }
}

impl Handler<ClaimOffer> for OrderActor {
    type Result = Answer;
    fn handle(&mut self, m: ClaimOffer, ctx: &mut Context<Self>) -> Self::Result {
        match self.offers.claim(&m.offer_id, &m.rider_id) {
            Err(ClaimError::AlreadyWon) if self.order.rider_id.as_ref() == Some(&m.rider_id) => {
                self.persist()
            }
            Err(_) => refuse(EngineError::OfferNotAvailable),
            Ok(_) if self.order.status != OrderStatus::Accepted => {
                refuse(EngineError::OfferNotAvailable)
            }
            Ok(others) => {
                if let Some(h) = self.offer_timers.remove(&m.offer_id) {
                    ctx.cancel_future(h);
                }
                let previous_fix = std::mem::replace(&mut self.rider_fix, m.fix);
                let assign = OrderCommand::Assign {
                    rider_id: m.rider_id.clone(),
                };
                if let Err(e) = self.change(assign, ctx) {
                    self.rider_fix = previous_fix;
                    return refuse(e);
                }
                metrics::counter!(metric_names::OFFERS_TOTAL, "outcome" => "accepted").increment(1);
                self.announce(Event::OfferClosed {
                    offer_id: m.offer_id.clone(),
                    order_id: self.order.order_id.clone(),
                    rider_id: m.rider_id.clone(),
                    reason: OfferCloseReason::Taken,
                });
                // The other riders hear that the offer is taken once the assignment is stored.
                self.close_offers(others, OfferCloseReason::Taken, ctx);
                self.trace(format!("{} accepted {}", m.rider_id, m.offer_id), vec![]);
                self.persist()
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
            self.close_offers(vec![o], OfferCloseReason::Declined, ctx);
        }
        self.try_dispatch(ctx);
        self.persist_in_background(ctx);
    }
}

impl Handler<RiderReport> for OrderActor {
    type Result = Answer;
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
            ReportKind::Release if self.order.status.is_final() => {
                self.change(OrderCommand::Unassign, ctx)
            }
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
            Ok(_) => self.persist(),
            Err(e) => refuse(e),
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
    fn handle(&mut self, m: RiderMoved, ctx: &mut Context<Self>) {
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
        // A position is not a change of the order: it goes out at once.
        let moved = Event::RiderMovedForOrder {
            order_id: self.order.order_id.clone(),
            customer_id: self.order.customer_id.clone(),
            merchant_id: self.order.merchant_id.clone(),
            rider_id: m.rider_id,
            location: m.fix.point,
            ts_ms: m.fix.ts_ms,
            eta_s: eta.round() as u64,
        };
        // Tracking pages on other nodes see the rider too (several nodes).
        self.shared.order_notices.put(&moved);
        self.shared.bus.publish(moved);
        if self.order.status == OrderStatus::Assigned && !self.arriving_sent {
            let to_pickup = self
                .policy
                .travel_s(m.fix.point.distance_m(&self.order.pickup.point()));
            if to_pickup < ARRIVING_S {
                // Once per order, remembered in the store: a restart does not repeat it.
                self.arriving_sent = true;
                self.announce(Event::RiderArriving {
                    order_id: self.order.order_id.clone(),
                    merchant_id: self.order.merchant_id.clone(),
                    eta_s: to_pickup.round() as u64,
                });
                self.persist_in_background(ctx);
            }
        }
    }
}
