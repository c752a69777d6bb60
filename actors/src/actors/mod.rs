//! The actors: thin shells that route messages, hold timers and call the plain logic in
//! `crate::domain` and `crate::matcher`.
//!
//! - [`rider::RiderActor`]: one per rider; GPS intake, status, offers held, silence timers.
//! - [`order::OrderActor`]: one per live order; state machine, dispatch, order timers.
//! - [`merchant::MerchantActor`]: one per merchant; open/closed, menu, pricing.
//! - [`matcher::MatcherActor`]: the R-tree of riders, on its own Arbiter.
//! - [`desk::EscalationDesk`]: the book of escalations.
//! - [`planner::PlannerActor`]: batch dispatch rounds (`dispatch.policy = "batch"`).
//! - [`engine::Engine`]: the facade that creates actors and routes calls by id.
//! - [`remote`]: references to actors of other nodes, and their messages as data.

pub mod alerts;
pub mod alerts_heard;
pub mod coalesce;
pub mod desk;
pub mod directory;
pub mod engine;
pub mod fleet;
pub mod matcher;
pub mod merchant;
pub mod order;
pub mod order_notices;
mod peer_notes;
pub mod planner;
pub mod remote;
pub mod rider;
pub mod roster;
pub mod timers;

use crate::clock::Clock;
use crate::config::EngineConfig;
use crate::events::EventBus;
use crate::store::Store;
use actix::Addr;
use std::sync::Arc;

/// What every actor of one engine shares.
pub struct Shared {
    pub cfg: EngineConfig,
    pub clock: Clock,
    pub bus: EventBus,
    pub store: Arc<dyn Store>,
    pub dir: directory::Directory,
    pub matcher: Addr<matcher::MatcherActor>,
    /// Riders' changes for the matcher, taken in batches (`crate::matcher::feed`).
    pub matcher_feed: Arc<crate::matcher::feed::MatcherFeed>,
    pub desk: Addr<desk::EscalationDesk>,
    /// The batch planner; None under `dispatch.policy = "nearest"`.
    pub planner: Option<Addr<planner::PlannerActor>>,
    /// The other nodes, once this engine joined them (docs/cluster.md); unset on a node
    /// of its own.
    pub peers: std::sync::OnceLock<Arc<dyn remote::Peers>>,
    /// This node's riders as the other nodes' matchers are to see them.
    pub fleet: fleet::Fleet,
    /// This node's riders as the other nodes' dashboards are to see them.
    pub roster: roster::Roster,
    /// Other nodes' riders' views, for this node's dashboards' hub.
    pub riders_elsewhere: tokio::sync::broadcast::Sender<roster::RidersElsewhere>,
    /// This node's escalations as the other nodes' lists and dashboards are to see them.
    pub alerts: Arc<alerts::Alerts>,
    /// Other nodes' escalations, as last heard, with their nodes.
    pub alerts_heard: parking_lot::Mutex<alerts_heard::AlertsHeard>,
    /// Other nodes' escalations as heard, for this node's dashboards' hub.
    pub escalations_elsewhere: tokio::sync::broadcast::Sender<alerts::EscalationsHeard>,
    /// This node's orders' notices for merchant apps and tracking pages on other nodes.
    pub order_notices: order_notices::OrderNotices,
    /// Other nodes' orders' notices as heard, for this node's hub.
    pub order_notices_elsewhere: tokio::sync::broadcast::Sender<order_notices::NoticesHeard>,
    /// The arbiter the engine started on: actors started for other nodes' calls (which
    /// arrive on plain tokio tasks) start here.
    pub home: actix::ArbiterHandle,
    /// Zone ownership of orders, once turned on (docs/cluster.md).
    pub zones: std::sync::OnceLock<engine::Zones>,
}

impl Shared {
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The rider's actor: on this node, or on the node it is known to live on.
    pub fn rider_ref(&self, id: &crate::domain::RiderId) -> Option<remote::RiderRef> {
        if let Some(addr) = self.dir.rider(id) {
            return Some(remote::RiderRef::Local(addr));
        }
        let peers = self.peers.get()?;
        let node = self.dir.remote_riders.read().get(id).cloned()?;
        Some(remote::RiderRef::Remote {
            peers: peers.clone(),
            node,
            rider_id: id.clone(),
        })
    }

    /// The order's actor: on this node, or on the node it is known to live on.
    pub fn order_ref(&self, id: &crate::domain::OrderId) -> Option<remote::OrderRef> {
        if let Some(addr) = self.dir.order(id) {
            return Some(remote::OrderRef::Local(addr));
        }
        let peers = self.peers.get()?;
        let node = self.dir.remote_orders.read().get(id).cloned()?;
        Some(remote::OrderRef::Remote {
            peers: peers.clone(),
            node,
            order_id: id.clone(),
        })
    }

    /// Refuses a change the store could not take now (Redis away, or still recovering):
    /// nothing unstored is acknowledged.
    pub fn writable(&self) -> Result<(), crate::error::EngineError> {
        if self.store.writable() {
            Ok(())
        } else {
            Err(crate::error::EngineError::Unavailable(
                "the store is unavailable; nothing was changed".into(),
            ))
        }
    }
}
