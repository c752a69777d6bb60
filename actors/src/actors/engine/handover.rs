//! A rider's actor lives on the node holding its socket (docs/cluster.md, "Riders"): the
//! fixes it sends, the hottest path, never cross nodes. When its socket opens on another
//! node the actor moves there: the old node stops it and hands over its state (open offer
//! and orders in hand included), or, when it lives nowhere (its node died), the new node
//! rebuilds it from the store and from its orders' own records.

use super::{not_found, Engine};
use crate::actors::remote::wire::{Answer, Call, RiderMsg};
use crate::actors::rider::RiderActor;
use crate::domain::gps::GpsFix;
use crate::domain::rider::{RiderState, RiderStatus};
use crate::domain::RiderId;
use crate::error::EngineError;
use actix::prelude::*;
use std::sync::Arc;

impl Engine {
    /// Does this node run the rider's actor now?
    pub fn hosts_rider(&self, id: &RiderId) -> bool {
        self.shared.dir.rider(id).is_some()
    }

    /// The live node other than this one that runs the rider's actor, if any: the fleet
    /// says, else (offline, or never located) the store. A node membership says is gone
    /// is none: asking it would only wait out the call's timeout (the rider's app,
    /// reconnecting or reporting a fix, waits with it).
    pub(super) async fn rider_home(&self, id: &RiderId) -> Result<Option<Arc<str>>, EngineError> {
        let Some(peers) = self.shared.peers.get() else {
            return Ok(None);
        };
        let mut node = self.shared.dir.remote_riders.read().get(id).cloned();
        if node.is_none() {
            node = self
                .shared
                .store
                .rider_node(id)
                .await
                .map_err(|e| EngineError::Unavailable(e.to_string()))?
                .filter(|n| n != peers.node())
                .map(Arc::from);
        }
        Ok(node.filter(|n| !self.shared.fleet.is_gone(n)))
    }

    /// Makes sure the rider's actor is on this node (a single node: it is, or the rider
    /// does not exist).
    pub async fn take_rider(&self, id: &RiderId) -> Result<(), EngineError> {
        if self.shared.dir.rider(id).is_some() {
            return Ok(());
        }
        let Some(peers) = self.shared.peers.get().cloned() else {
            return Err(not_found("rider", id));
        };
        let handed = match self.rider_home(id).await? {
            Some(node) => {
                let call = Call::Rider {
                    rider_id: id.clone(),
                    msg: RiderMsg::HandOver,
                };
                match peers.call(&node, call.encode()).await {
                    Ok(body) => match Answer::decode(&body) {
                        Answer::RiderState { state } => {
                            let status = state.status();
                            Some((*state, status))
                        }
                        _ => None,
                    },
                    Err(_) => None,
                }
            }
            None => None,
        };
        let rebuilt = handed.is_none();
        let (state, stored_status) = match handed {
            Some(s) => s,
            None => self.rider_from_store(id).await?,
        };
        // Where its orders live (the offer's too): its claims and reports go there.
        let ids = state
            .orders
            .iter()
            .map(|o| o.order_id.clone())
            .chain(state.offer.iter().flat_map(|o| o.order_ids()));
        for order_id in ids.collect::<Vec<_>>() {
            // Rebuilt: its node died, maybe with its orders' zones; where this node last
            // heard an order lives may be that dead node.
            if rebuilt {
                let _ = self.relocate_order(&order_id).await;
            }
            let _ = self.locate_order(&order_id).await;
        }
        // The store names this node before the actor announces itself to the peers: a
        // peer hearing of the rider from two nodes believes the one the store names
        // (fleet.rs), so the new node must already be the named one.
        self.shared
            .store
            .set_rider_node(id, peers.node())
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        // Another socket of this rider may have raced this one here.
        if self.shared.dir.rider(id).is_some() {
            return Ok(());
        }
        let heard = state
            .last_fix
            .map_or(self.now_ms(), |f| f.ts_ms.min(self.now_ms()));
        let shared = self.shared.clone();
        let addr = RiderActor::create(|ctx| {
            let fixes = shared.dir.add_rider_fixes(id, ctx.address());
            RiderActor::moved_in(state, shared.clone(), fixes, heard, stored_status)
        });
        self.shared.dir.riders.write().insert(id.clone(), addr);
        self.place_rider(id, None);
        Ok(())
    }

    /// The rider as stored, its orders in hand as their own records say (they are the
    /// truth: the rider record may be older).
    async fn rider_from_store(
        &self,
        id: &RiderId,
    ) -> Result<(RiderState, RiderStatus), EngineError> {
        let (view, position) = self
            .shared
            .store
            .load_rider(id)
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?
            .ok_or_else(|| not_found("rider", id))?;
        let mut state = RiderState::new(id.clone(), view.name.clone());
        state.online = view.status != RiderStatus::Offline;
        state.stale = view.status == RiderStatus::Stale;
        let fix = position.or_else(|| view.location.map(|p| (p, view.last_seen_ms.unwrap_or(0))));
        state.last_fix = fix.map(|(point, ts_ms)| GpsFix { point, ts_ms });
        // Read from the store, not asked of their actors: the node they were on may be the
        // one that died, and its zones not taken up yet. An order in hand is never dropped
        // for want of an answer: a store error refuses the socket (the app retries).
        for order_id in &view.order_ids {
            let rec = self
                .shared
                .store
                .load_order_record(order_id)
                .await
                .map_err(|e| EngineError::Unavailable(e.to_string()))?;
            if let Some(o) = rec.map(|r| r.order) {
                if o.rider_id.as_ref() == Some(id) && !o.status.is_final() {
                    state.orders.push(o);
                }
            }
        }
        Ok((state, view.status))
    }
}
