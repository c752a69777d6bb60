//! The same messages delivered to an actor of this node: what a local reference does, and
//! what a node does with a message from another. Each puts the message in the actor's
//! mailbox before it returns (actix `send` and `do_send` both do), so messages keep the
//! order they were given in.

use super::wire::{Answer, OrderMsg, RiderMsg};
use crate::actors::order::OrderActor;
use crate::actors::rider::RiderActor;
use crate::protocol::{
    AssignByDispatcher, CheckAssignable, ClaimOffer, CloseOffer, Command, DeclineOffer, GetOrder,
    GetRider, GetTrace, HandOver, LegClosed, OrderAssigned, OrderCancelled, OrderChanged,
    OrderUnassigned, ProposeOffer, RemindRider, RiderLost, RiderMoved, RiderReport, WasOffered,
};
use actix::Addr;
use futures_util::future::{ready, BoxFuture, FutureExt};

/// Delivers `msg` to a rider actor of this node; the future is its answer.
pub fn to_rider(addr: &Addr<RiderActor>, msg: RiderMsg) -> BoxFuture<'static, Answer> {
    match msg {
        RiderMsg::Propose { offer, order_id } => {
            let f = addr.send(ProposeOffer(offer, order_id));
            async move {
                match f.await {
                    Ok(value) => Answer::Bool { value },
                    Err(e) => Answer::failed(e),
                }
            }
            .boxed()
        }
        RiderMsg::CheckAssignable => {
            let f = addr.send(CheckAssignable);
            async move {
                match f.await {
                    Ok(result) => Answer::Fix { result },
                    Err(e) => Answer::failed(e),
                }
            }
            .boxed()
        }
        RiderMsg::HandOver => {
            let f = addr.send(HandOver);
            async move {
                match f.await {
                    Ok(state) => Answer::RiderState {
                        state: Box::new(state),
                    },
                    Err(e) => Answer::failed(e),
                }
            }
            .boxed()
        }
        RiderMsg::View => {
            let f = addr.send(GetRider);
            async move {
                match f.await {
                    Ok(view) => Answer::Rider { view },
                    Err(e) => Answer::failed(e),
                }
            }
            .boxed()
        }
        one_way => {
            tell_rider(addr, one_way);
            ready(Answer::Done).boxed()
        }
    }
}

/// Delivers a message that answers nothing to a rider actor of this node.
pub fn tell_rider(addr: &Addr<RiderActor>, msg: RiderMsg) {
    match msg {
        RiderMsg::Close { offer_id, reason } => addr.do_send(CloseOffer { offer_id, reason }),
        RiderMsg::Assigned { order } => addr.do_send(OrderAssigned(order)),
        RiderMsg::Unassigned { order_id, reason } => {
            addr.do_send(OrderUnassigned { order_id, reason })
        }
        RiderMsg::Cancelled { order_id } => addr.do_send(OrderCancelled(order_id)),
        RiderMsg::Changed { order } => addr.do_send(OrderChanged(order)),
        RiderMsg::Remind { order_id, message } => addr.do_send(RemindRider { order_id, message }),
        // These answer something: sent for their effect, the answer dropped.
        RiderMsg::Propose { offer, order_id } => addr.do_send(ProposeOffer(offer, order_id)),
        // A tracker fix goes into the rider's fix slot, not its mailbox (serve.rs).
        RiderMsg::CheckAssignable
        | RiderMsg::View
        | RiderMsg::HandOver
        | RiderMsg::TrackerFix { .. } => {}
    }
}

/// Delivers `msg` to an order actor of this node; the future is its answer.
pub fn to_order(addr: &Addr<OrderActor>, msg: OrderMsg) -> BoxFuture<'static, Answer> {
    fn order<E: std::fmt::Display>(
        f: impl std::future::Future<
                Output = Result<Result<crate::domain::order::Order, crate::error::EngineError>, E>,
            > + Send
            + 'static,
    ) -> BoxFuture<'static, Answer> {
        async move {
            match f.await {
                Ok(result) => Answer::Order { result },
                Err(e) => Answer::failed(e),
            }
        }
        .boxed()
    }
    match msg {
        OrderMsg::Get => {
            let f = addr.send(GetOrder);
            order(async move { f.await.map(Ok) })
        }
        OrderMsg::Trace => {
            let f = addr.send(GetTrace);
            async move {
                match f.await {
                    Ok(entries) => Answer::Trace { entries },
                    Err(e) => Answer::failed(e),
                }
            }
            .boxed()
        }
        OrderMsg::WasOffered { rider_id } => {
            let f = addr.send(WasOffered(rider_id));
            async move {
                match f.await {
                    Ok(value) => Answer::Bool { value },
                    Err(e) => Answer::failed(e),
                }
            }
            .boxed()
        }
        OrderMsg::Command { cmd } => order(addr.send(Command(cmd))),
        OrderMsg::AssignByDispatcher { rider_id, fix } => {
            order(addr.send(AssignByDispatcher { rider_id, fix }))
        }
        OrderMsg::Claim {
            offer_id,
            rider_id,
            fix,
        } => order(addr.send(ClaimOffer {
            offer_id,
            rider_id,
            fix,
        })),
        OrderMsg::Report { rider_id, report } => order(addr.send(RiderReport {
            rider_id,
            kind: report,
        })),
        one_way => {
            tell_order(addr, one_way);
            ready(Answer::Done).boxed()
        }
    }
}

/// Delivers a message that answers nothing to an order actor of this node.
pub fn tell_order(addr: &Addr<OrderActor>, msg: OrderMsg) {
    match msg {
        OrderMsg::Decline { offer_id, rider_id } => {
            addr.do_send(DeclineOffer { offer_id, rider_id })
        }
        OrderMsg::RiderLost { rider_id } => addr.do_send(RiderLost { rider_id }),
        OrderMsg::RiderMoved { rider_id, fix } => addr.do_send(RiderMoved { rider_id, fix }),
        OrderMsg::LegClosed {
            offer_id,
            rider_id,
            reason,
        } => addr.do_send(LegClosed {
            offer_id,
            rider_id,
            reason,
        }),
        // These answer something: sent for their effect, the answer dropped.
        OrderMsg::Command { cmd } => addr.do_send(Command(cmd)),
        OrderMsg::Claim {
            offer_id,
            rider_id,
            fix,
        } => addr.do_send(ClaimOffer {
            offer_id,
            rider_id,
            fix,
        }),
        OrderMsg::Report { rider_id, report } => addr.do_send(RiderReport {
            rider_id,
            kind: report,
        }),
        OrderMsg::AssignByDispatcher { rider_id, fix } => {
            addr.do_send(AssignByDispatcher { rider_id, fix })
        }
        OrderMsg::Get | OrderMsg::Trace | OrderMsg::WasOffered { .. } => {}
    }
}
