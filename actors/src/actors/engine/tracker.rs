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
        // Nowhere else (its node gone, or never started): taken up here, below.
        if let Some(node) = self.rider_home(id).await? {
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
