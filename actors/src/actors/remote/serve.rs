//! What a node does with messages other nodes send its actors: delivers each to the actor
//! if it lives here (in inbox order), else answers `NotHere`.

use super::local;
use super::wire::{Answer, Call};
use crate::actors::{fleet, Shared};
use crate::mesh::CallHandler;
use futures_util::future::{ready, BoxFuture, FutureExt};
use std::sync::Weak;

/// The engine's side of the mesh.
pub struct NodeCalls {
    shared: Weak<Shared>,
}

impl NodeCalls {
    pub(crate) fn new(shared: Weak<Shared>) -> Self {
        Self { shared }
    }

    fn deliver(&self, from: &str, body: &str) -> BoxFuture<'static, Answer> {
        let Some(shared) = self.shared.upgrade() else {
            return ready(Answer::failed("the engine stopped")).boxed();
        };
        match serde_json::from_str::<Call>(body) {
            Ok(Call::Rider { rider_id, msg }) => match shared.dir.rider(&rider_id) {
                Some(addr) => local::to_rider(&addr, msg),
                None => ready(Answer::NotHere).boxed(),
            },
            Ok(Call::Order { order_id, msg }) => match shared.dir.order(&order_id) {
                Some(addr) => local::to_order(&addr, msg),
                None => ready(Answer::NotHere).boxed(),
            },
            Ok(Call::Fleet { changes }) => {
                fleet::heard(&shared, from, changes);
                ready(Answer::Done).boxed()
            }
            Err(e) => ready(Answer::failed(format!("unreadable message: {e}"))).boxed(),
        }
    }
}

impl CallHandler for NodeCalls {
    fn handle(&self, from: &str, body: String) -> BoxFuture<'static, String> {
        let answer = self.deliver(from, &body);
        async move { answer.await.encode() }.boxed()
    }

    fn note(&self, from: &str, body: String) {
        // Delivered now (in order); a note for an actor not here is dropped: what it
        // carried is in the store, and the actor's new node reads it from there.
        let answer = self.deliver(from, &body);
        if let Some(Answer::NotHere) = answer.now_or_never() {
            tracing::debug!(from, "mesh: a note for an actor not on this node");
        }
    }
}
