//! The hub's part in showing other nodes' riders (docs/cluster.md, "The whole city on
//! every socket"): their views come from the engine (`Engine::riders_elsewhere`, what the
//! peers sent), go into the dashboards' next `updates` exactly as a local rider's do, and
//! are kept for snapshots (`crate::riders_elsewhere`).

use super::Hub;
use dispatch_actors::actors::roster::RidersElsewhere;
use dispatch_actors::domain::rider::RiderView;
use dispatch_actors::metric_names;
use dispatch_actors::Engine;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

fn dropped(n: u64) {
    metrics::counter!(metric_names::PEER_CHANGES_DROPPED_TOTAL, "what" => "riders_elsewhere")
        .increment(n);
}

impl Hub {
    /// Reads what the engine hears of other nodes' riders until `shutdown` turns true.
    pub(super) fn follow_riders_elsewhere(
        self: &Arc<Self>,
        engine: &Engine,
        stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let rx = engine.riders_elsewhere();
        let hub = self.clone();
        // Lost views: the riders' next changes bring them back.
        super::follow::follow(rx, stop, "riders_elsewhere", move |heard| match heard {
            RidersElsewhere::Views { node, views } => {
                for view in views {
                    hub.rider_elsewhere(view, node.clone());
                }
            }
            RidersElsewhere::Left { node } => hub.node_left(&node),
        })
    }

    /// A rider whose actor lives on `node` changed: dashboards get it in their next
    /// `updates`, as a local rider; snapshots list it.
    pub fn rider_elsewhere(&self, view: Arc<RiderView>, node: Arc<str>) {
        if !self.riders_elsewhere.lock().put(view.clone(), node) {
            dropped(1);
        }
        self.pending
            .lock()
            .riders
            .insert(view.rider_id.clone(), view);
    }

    /// `node` left: its riders leave snapshots. Dashboards open keep their last view (the
    /// protocol has no frame that takes a rider off a board); each comes back changed
    /// once its actor is up on another node.
    pub fn node_left(&self, node: &str) {
        let n = self.riders_elsewhere.lock().forget_node(node);
        if n > 0 {
            tracing::info!(
                node,
                riders = n,
                "a node left: its riders leave the snapshots"
            );
        }
    }

    /// The riders other nodes run, as last heard (snapshots).
    pub fn riders_elsewhere(&self) -> Vec<Arc<RiderView>> {
        self.riders_elsewhere.lock().riders()
    }
}
