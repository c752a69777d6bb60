//! A tracking app's fix (OsmAnd, Traccar, OwnTracks) may reach any node, whichever runs
//! the rider's actor (docs/cluster.md, "Tracking apps"): the fix goes to the rider's node
//! through the mesh and its verdict comes back. A rider whose actor lives nowhere (a
//! tracker-only rider after its node died, or never started in this cluster) is taken up
//! here, as a socket opening here would take it.

use super::{not_found, Engine};
use crate::actors::remote::wire::{Answer, Call, RiderMsg};
use crate::domain::gps::{FixVerdict, RawFix};
use crate::domain::RiderId;
use crate::error::EngineError;
use std::sync::Arc;

impl Engine {
    /// The verdict on a tracker fix for a rider whose actor is not on this node (None: a
    /// newer fix of the rider took its place first). A single node (no peers) has no
    /// other place to look: the rider is not found.
    pub async fn tracker_fix_elsewhere(
        &self,
        id: &RiderId,
        raw: RawFix,
        go_online: bool,
    ) -> Result<Option<FixVerdict>, EngineError> {
        let Some(peers) = self.shared.peers.get().cloned() else {
            return Err(not_found("rider", id));
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
        // Its node is gone: the rider is taken up here (from the store).
        if let Some(node) = node.filter(|n| !self.shared.fleet.is_gone(n)) {
            let call = Call::Rider {
                rider_id: id.clone(),
                msg: RiderMsg::TrackerFix { raw, go_online },
            };
            return match peers.call(&node, call.encode()).await {
                Ok(body) => match Answer::decode(&body) {
                    Answer::Verdict { verdict } => Ok(verdict),
                    // Moved on, or its node lost it: the app's next fix finds it again.
                    other => Err(EngineError::Unavailable(format!(
                        "rider {id} is not on node {node} now ({other:?}); retry"
                    ))),
                },
                // Its node is gone or slow; once the fleet forgets it, the next fix takes
                // the rider up here.
                Err(e) => Err(EngineError::Unavailable(format!("node {node}: {e}; retry"))),
            };
        }
        self.take_rider(id).await?;
        let handle = self.rider_handle(id)?;
        Ok(handle.tracker_fix(raw, go_online).await.ok())
    }
}
