//! What a node does with messages other nodes send its actors: delivers each to the actor
//! if it lives here (in inbox order), else answers `NotHere`.

use super::local;
use super::wire::{Answer, Call, RiderMsg};
use crate::actors::desk::Resolve;
use crate::actors::merchant::{MerchantActor, ReplaceState};
use crate::actors::{alerts, fleet, order_notices, roster, Shared};
use crate::mesh::CallHandler;
use actix::Actor;
use futures_util::future::{ready, BoxFuture, FutureExt};
use std::sync::{Arc, Weak};
use tokio::sync::oneshot;

/// The engine's side of the mesh. Each message is handled on the engine's home arbiter
/// (actors start and live there), in the order the inbox gave them: the arbiter runs
/// what it is given in order, and each message reaches its actor's mailbox at its first
/// step.
#[derive(Clone)]
pub struct NodeCalls {
    shared: Weak<Shared>,
}

impl NodeCalls {
    pub(crate) fn new(shared: Weak<Shared>) -> Self {
        Self { shared }
    }

    /// False when the engine (or its arbiter) stopped.
    fn on_home(&self, work: impl std::future::Future<Output = ()> + Send + 'static) -> bool {
        match self.shared.upgrade() {
            Some(shared) => shared.home.spawn(work),
            None => false,
        }
    }

    fn deliver(&self, from: &str, body: &str) -> BoxFuture<'static, Answer> {
        let Some(shared) = self.shared.upgrade() else {
            return ready(Answer::failed("the engine stopped")).boxed();
        };
        match serde_json::from_str::<Call>(body) {
            // Into the rider's latest-fix-wins slot, as a fix arriving here would go.
            Ok(Call::Rider {
                rider_id,
                msg: RiderMsg::TrackerFix { raw, go_online },
            }) => {
                match crate::actors::engine::Engine::from_shared(shared).rider_handle(&rider_id) {
                    Ok(handle) => {
                        let verdict = handle.tracker_fix(raw, go_online);
                        async move {
                            Answer::Verdict {
                                verdict: verdict.await.ok(),
                            }
                        }
                        .boxed()
                    }
                    Err(_) => ready(Answer::NotHere).boxed(),
                }
            }
            Ok(Call::Rider { rider_id, msg }) => match shared.dir.rider(&rider_id) {
                Some(addr) => {
                    learn_orders(&shared, from, &msg);
                    local::to_rider(&addr, msg)
                }
                None => ready(Answer::NotHere).boxed(),
            },
            Ok(Call::Order { order_id, msg }) => match shared.dir.order(&order_id) {
                Some(addr) => local::to_order(&addr, msg),
                None => ready(Answer::NotHere).boxed(),
            },
            Ok(Call::CreateOrder {
                order_id,
                customer_id,
                merchant_id,
                items,
                dropoff,
            }) => {
                let engine = crate::actors::engine::Engine::from_shared(shared);
                async move {
                    let result = engine
                        .create_order_as(order_id, customer_id, &merchant_id, items, dropoff)
                        .await;
                    Answer::Order { result }
                }
                .boxed()
            }
            Ok(Call::Merchant { state }) => {
                tracing::debug!(merchant = %state.merchant.merchant_id, "mesh: merchant from another node");
                let id = state.merchant.merchant_id.clone();
                match shared.dir.merchant(&id) {
                    Some(addr) => addr.do_send(ReplaceState(state)),
                    None => {
                        let addr = MerchantActor::new(state, shared.clone()).start();
                        shared.dir.merchants.write().insert(id, addr);
                    }
                }
                ready(Answer::Done).boxed()
            }
            Ok(Call::Riders { views }) => {
                roster::heard(&shared, from, views);
                ready(Answer::Done).boxed()
            }
            Ok(Call::Escalations { escalations }) => {
                alerts::heard(&shared, from, escalations);
                ready(Answer::Done).boxed()
            }
            // Straight to the hub: the sender's hub had them, and nothing here passes on
            // what it heard.
            Ok(Call::OrderNotices { notices }) => {
                order_notices::heard(&shared, notices);
                ready(Answer::Done).boxed()
            }
            Ok(Call::ResolveEscalation {
                escalation_id,
                note,
            }) => {
                let desk = shared.desk.clone();
                async move {
                    let result = match desk
                        .send(Resolve {
                            id: escalation_id,
                            note,
                        })
                        .await
                    {
                        Ok(result) => result,
                        Err(e) => Err(e.into()),
                    };
                    Answer::Escalation { result }
                }
                .boxed()
            }
            Ok(Call::Fleet { changes }) => {
                fleet::heard(&shared, from, changes);
                ready(Answer::Done).boxed()
            }
            Err(e) => ready(Answer::failed(format!("unreadable message: {e}"))).boxed(),
        }
    }
}

/// An order's node tells a rider here about the order: later messages from the rider go
/// to that node (it may have taken the order over from another). A final order is
/// forgotten.
fn learn_orders(shared: &Shared, from: &str, msg: &RiderMsg) {
    let node: Arc<str> = from.into();
    let mut remote = shared.dir.remote_orders.write();
    match msg {
        RiderMsg::Propose { offer, .. } => {
            for id in offer.order_ids() {
                remote.insert(id, node.clone());
            }
        }
        RiderMsg::Assigned { order } | RiderMsg::Changed { order } => {
            if order.status.is_final() {
                remote.remove(&order.order_id);
            } else {
                remote.insert(order.order_id.clone(), node);
            }
        }
        RiderMsg::Cancelled { order_id } => {
            remote.remove(order_id);
        }
        _ => {}
    }
}

impl CallHandler for NodeCalls {
    fn handle(&self, from: &str, body: String) -> BoxFuture<'static, String> {
        let (tx, rx) = oneshot::channel();
        let (this, from) = (self.clone(), from.to_string());
        if !self.on_home(async move {
            let answer = this.deliver(&from, &body).await;
            let _ = tx.send(answer.encode());
        }) {
            return ready(Answer::failed("the engine stopped").encode()).boxed();
        }
        async move {
            rx.await
                .unwrap_or_else(|_| Answer::failed("the engine stopped").encode())
        }
        .boxed()
    }

    fn note(&self, from: &str, body: String) {
        tracing::debug!(from, len = body.len(), "mesh: note");
        // A note for an actor not here is dropped: what it carried is in the store, and
        // the actor's new node reads it from there.
        let (this, from) = (self.clone(), from.to_string());
        self.on_home(async move {
            if let Answer::NotHere = this.deliver(&from, &body).await {
                tracing::debug!(from, "mesh: a note for an actor not on this node");
            }
        });
    }
}
