//! The hub's part in showing other nodes' escalations (docs/cluster.md, "The whole city
//! on every socket"): their changes come from the engine (`Engine::escalations_elsewhere`,
//! what the peers sent) and go into the dashboards' next `updates` exactly as a local
//! escalation's do. Snapshots list them through the engine (`Engine::escalations`), which
//! keeps them.

use super::Hub;
use dispatch_actors::domain::escalation::Escalation;
use dispatch_actors::metric_names;
use dispatch_actors::Engine;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio::task::JoinHandle;

impl Hub {
    /// Reads what the engine hears of other nodes' escalations until `shutdown` turns
    /// true.
    pub(super) fn follow_escalations_elsewhere(
        self: &Arc<Self>,
        engine: &Engine,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let mut rx = engine.escalations_elsewhere();
        let hub = self.clone();
        actix_web::rt::spawn(async move {
            loop {
                let heard = tokio::select! {
                    heard = rx.recv() => heard,
                    _ = stop.wait_for(|s| *s) => break,
                };
                match heard {
                    Ok(heard) => {
                        for e in heard.escalations {
                            hub.escalation_elsewhere(e);
                        }
                    }
                    // Lost changes: snapshots still list them (the engine keeps them).
                    Err(RecvError::Lagged(n)) => {
                        metrics::counter!(metric_names::PEER_CHANGES_DROPPED_TOTAL, "what" => "escalations_elsewhere")
                            .increment(n);
                    }
                    Err(RecvError::Closed) => break,
                }
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
