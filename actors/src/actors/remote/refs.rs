//! References to rider and order actors, here or on another node.

use super::local;
use super::wire::{Answer, Call, OrderMsg, RiderMsg};
use super::Peers;
use crate::actors::order::OrderActor;
use crate::actors::rider::RiderActor;
use crate::domain::gps::GpsFix;
use crate::domain::offers::Offer;
use crate::domain::order::Order;
use crate::domain::{OrderId, RiderId};
use crate::error::EngineError;
use actix::Addr;
use futures_util::future::{BoxFuture, FutureExt};
use std::sync::Arc;

/// Where a rider's actor is.
#[derive(Clone)]
pub enum RiderRef {
    Local(Addr<RiderActor>),
    Remote {
        peers: Arc<dyn Peers>,
        node: Arc<str>,
        rider_id: RiderId,
    },
}

/// Where an order's actor is.
#[derive(Clone)]
pub enum OrderRef {
    Local(Addr<OrderActor>),
    Remote {
        peers: Arc<dyn Peers>,
        node: Arc<str>,
        order_id: OrderId,
    },
}

/// A call through the mesh, its answer decoded (a failure to reach the node is an answer
/// too: `Failed`).
fn ask_remote(peers: &Arc<dyn Peers>, node: &str, call: Call) -> BoxFuture<'static, Answer> {
    let f = peers.call(node, call.encode());
    async move {
        match f.await {
            Ok(body) => Answer::decode(&body),
            Err(e) => Answer::failed(e),
        }
    }
    .boxed()
}

impl RiderRef {
    /// Sends a message and returns its answer.
    pub fn ask(&self, msg: RiderMsg) -> BoxFuture<'static, Answer> {
        match self {
            RiderRef::Local(addr) => local::to_rider(addr, msg),
            RiderRef::Remote {
                peers,
                node,
                rider_id,
            } => ask_remote(
                peers,
                node,
                Call::Rider {
                    rider_id: rider_id.clone(),
                    msg,
                },
            ),
        }
    }

    /// Sends a message that answers nothing, after everything sent to it from here before.
    pub fn tell(&self, msg: RiderMsg) {
        match self {
            RiderRef::Local(addr) => local::tell_rider(addr, msg),
            RiderRef::Remote {
                peers,
                node,
                rider_id,
            } => {
                let call = Call::Rider {
                    rider_id: rider_id.clone(),
                    msg,
                };
                peers.note(node, call.encode());
            }
        }
    }

    /// `ProposeOffer`: did the rider take the offer? (Not reached: no.)
    pub fn propose(&self, offer: Offer, order_id: OrderId) -> BoxFuture<'static, bool> {
        let f = self.ask(RiderMsg::Propose { offer, order_id });
        async move { matches!(f.await, Answer::Bool { value: true }) }.boxed()
    }

    /// `CheckAssignable`: the rider's last fix if a dispatcher may assign it an order.
    pub fn check_assignable(&self) -> BoxFuture<'static, Result<Option<GpsFix>, EngineError>> {
        let f = self.ask(RiderMsg::CheckAssignable);
        async move {
            match f.await {
                Answer::Fix { result } => result,
                Answer::NotHere => Err(EngineError::RiderUnavailable(
                    "the rider moved to another node; retry".into(),
                )),
                other => Err(EngineError::Unavailable(format!(
                    "the rider's node did not answer: {other:?}"
                ))),
            }
        }
        .boxed()
    }
}

impl OrderRef {
    pub fn ask(&self, msg: OrderMsg) -> BoxFuture<'static, Answer> {
        match self {
            OrderRef::Local(addr) => local::to_order(addr, msg),
            OrderRef::Remote {
                peers,
                node,
                order_id,
            } => ask_remote(
                peers,
                node,
                Call::Order {
                    order_id: order_id.clone(),
                    msg,
                },
            ),
        }
    }

    pub fn tell(&self, msg: OrderMsg) {
        match self {
            OrderRef::Local(addr) => local::tell_order(addr, msg),
            OrderRef::Remote {
                peers,
                node,
                order_id,
            } => {
                let call = Call::Order {
                    order_id: order_id.clone(),
                    msg,
                };
                peers.note(node, call.encode());
            }
        }
    }

    /// A message answered by the order as it is after it.
    pub fn ask_order(&self, msg: OrderMsg) -> BoxFuture<'static, Result<Order, EngineError>> {
        let f = self.ask(msg);
        async move { f.await.into_order() }.boxed()
    }

    /// Like [`OrderRef::ask_order`]; a remote order found final is forgotten here (its
    /// node will not be asked about it again).
    pub fn ask_order_in(
        &self,
        shared: &Arc<crate::actors::Shared>,
        msg: OrderMsg,
    ) -> BoxFuture<'static, Result<Order, EngineError>> {
        let f = self.ask_order(msg);
        if matches!(self, OrderRef::Local(_)) {
            return f;
        }
        let shared = Arc::downgrade(shared);
        let id = match self {
            OrderRef::Remote { order_id, .. } => order_id.clone(),
            OrderRef::Local(_) => unreachable!("returned above"),
        };
        async move {
            let r = f.await;
            let Some(shared) = shared.upgrade() else {
                return r;
            };
            match &r {
                Ok(o) if o.status.is_final() => {
                    shared.dir.remote_orders.write().remove(&o.order_id);
                }
                // Its node did not answer, or has it no more (its zone moved): look it up
                // again, so the rider's next try reaches it.
                Err(EngineError::Unavailable(_)) => {
                    let engine = crate::actors::engine::Engine::from_shared(shared);
                    let _ = engine.relocate_order(&id).await;
                }
                _ => {}
            }
            r
        }
        .boxed()
    }
}
