//! The engine among other nodes (docs/cluster.md): joining the mesh, the peer list (the
//! fleet, merchants shared), and where riders and orders of other nodes live.

use super::{ask_all, Engine};
use crate::actors::merchant::GetMerchant;
use crate::actors::remote::wire::Call;
use crate::actors::remote::{NodeCalls, Peers};
use crate::actors::roster::{self, RidersElsewhere};
use crate::actors::{alerts, fleet, order_notices, Shared};
use crate::domain::{MerchantId, RiderId};
use std::sync::Arc;

impl Engine {
    /// The engine over `shared` (for calls from other nodes; the arbiters stay with the
    /// engine that started them).
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Engine {
        Engine {
            shared,
            _arbiters: Vec::new(),
        }
    }

    /// What other nodes' messages to this engine's actors go to: hand it to this node's
    /// mesh (docs/cluster.md).
    pub fn node_calls(&self) -> NodeCalls {
        NodeCalls::new(Arc::downgrade(&self.shared))
    }

    /// Joins other nodes: messages to actors placed on them go through `peers` from now
    /// on. False if this engine had joined already.
    pub fn join(&self, peers: Arc<dyn Peers>) -> bool {
        if self.shared.peers.set(peers.clone()).is_err() {
            return false;
        }
        fleet::spawn_flusher(Arc::downgrade(&self.shared), peers.clone());
        roster::spawn_flusher(Arc::downgrade(&self.shared), peers.clone());
        self.shared.alerts.turn_on();
        alerts::spawn_flusher(Arc::downgrade(&self.shared), peers.clone());
        self.shared.order_notices.turn_on();
        order_notices::spawn_flusher(Arc::downgrade(&self.shared), peers);
        // The riders that have not changed since they came back (recovery) are known to
        // new peers too.
        let engine = self.clone();
        actix::spawn(async move {
            let views = engine.riders().await;
            engine.shared.roster.seed(views);
        });
        true
    }

    /// The other live nodes, as membership sees them now: new ones hear this node's whole
    /// fleet and riders; riders of those gone leave this node's matcher and dashboards.
    pub fn set_peers(&self, nodes: impl IntoIterator<Item = Arc<str>>) {
        let before = self.shared.fleet.peers();
        for gone in self.shared.fleet.set_peers(nodes) {
            fleet::forget_node(&self.shared, &gone);
            let _ = self
                .shared
                .riders_elsewhere
                .send(RidersElsewhere::Left { node: gone.clone() });
            let n = self.shared.alerts_heard.lock().forget_node(&gone);
            if n > 0 {
                tracing::info!(node = %gone, escalations = n, "a node left: its escalations leave the lists");
            }
        }
        let joined: Vec<Arc<str>> = self
            .shared
            .fleet
            .peers()
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        self.shared.roster.joined(&joined);
        self.shared.alerts.joined(&joined);
        if !joined.is_empty() {
            // A new peer may have missed merchants made before it was seen: all of them.
            let engine = self.clone();
            actix::spawn(async move { engine.share_merchants_with(&joined).await });
        }
    }

    async fn share_merchants_with(&self, nodes: &[Arc<str>]) {
        let Some(peers) = self.shared.peers.get() else {
            return;
        };
        let states = ask_all(&self.shared.dir.merchants, || GetMerchant).await;
        for state in states {
            let note = Call::Merchant { state }.encode();
            for node in nodes {
                peers.note(node, note.clone());
            }
        }
    }

    /// Has this node joined the others (a mesh to reach them)? Always false for a single
    /// node.
    pub fn joined(&self) -> bool {
        self.shared.peers.get().is_some()
    }

    /// Does rider `id` exist anywhere? Its actor here, or (several nodes) its record in
    /// the shared store: its actor may live on another node, or nowhere until its app
    /// connects. A single node answers from its own actors only.
    pub async fn rider_exists(&self, id: &RiderId) -> Result<bool, crate::error::EngineError> {
        if self.shared.dir.rider(id).is_some() {
            return Ok(true);
        }
        if self.shared.peers.get().is_none() {
            return Ok(false);
        }
        self.shared
            .store
            .load_rider(id)
            .await
            .map(|r| r.is_some())
            .map_err(|e| crate::error::EngineError::Unavailable(e.to_string()))
    }

    /// This rider's actor lives on `node` (None: nowhere else; a local actor wins).
    pub fn place_rider(&self, id: &RiderId, node: Option<Arc<str>>) {
        let mut remote = self.shared.dir.remote_riders.write();
        match node {
            Some(n) => remote.insert(id.clone(), n),
            None => remote.remove(id),
        };
    }

    /// This order's actor lives on `node` (None: nowhere else; a local actor wins).
    pub fn place_order(&self, id: &crate::domain::OrderId, node: Option<Arc<str>>) {
        let mut remote = self.shared.dir.remote_orders.write();
        match node {
            Some(n) => remote.insert(id.clone(), n),
            None => remote.remove(id),
        };
    }

    /// Tells the other nodes a merchant's state after a change here (each keeps every
    /// merchant: any node quotes an order, the zone's holder runs it).
    pub(super) async fn share_merchant(&self, id: &MerchantId) {
        let Some(peers) = self.shared.peers.get() else {
            return;
        };
        let Ok(state) = self.merchant(id).await else {
            return;
        };
        let note = Call::Merchant { state }.encode();
        for peer in self.shared.fleet.peers() {
            peers.note(&peer, note.clone());
        }
    }
}
