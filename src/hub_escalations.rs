//! The hub's part in showing other nodes' escalations (docs/cluster.md, "The whole city
//! on every socket"): their changes come from the engine (`Engine::escalations_elsewhere`,
//! what the peers sent) and go into the dashboards' next `updates` exactly as a local
//! escalation's do. Snapshots list them through the engine (`Engine::escalations`), which
//! keeps them.

use super::Hub;
use dispatch_actors::domain::escalation::Escalation;
use dispatch_actors::Engine;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

impl Hub {
    /// Reads what the engine hears of other nodes' escalations until `shutdown` turns
    /// true.
    pub(super) fn follow_escalations_elsewhere(
        self: &Arc<Self>,
        engine: &Engine,
        stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let rx = engine.escalations_elsewhere();
        let hub = self.clone();
        // Lost changes: snapshots still list them (the engine keeps them).
        super::follow::follow(rx, stop, "escalations_elsewhere", move |heard| {
            for e in heard.escalations {
                hub.escalation_elsewhere(e);
            }
        })
    }

    /// An escalation another node's desk holds changed: dashboards get it in their next
    /// `updates`, as a local one.
    pub fn escalation_elsewhere(&self, e: Arc<Escalation>) {
        self.pending
            .lock()
            .escalations
            .insert(e.escalation_id.clone(), e);
    }
}
