//! This process as one node of several (`[cluster]`, docs/cluster.md): the mesh to the
//! other nodes, the lease keeper, and the tasks that follow them: membership (who the
//! peers are), the zones worth owning (merchants' zones), and the zones held (rebuild a
//! zone's orders on taking it, stop them on losing it, fence the store's writes to it),
//! and the city feed (the other nodes' orders on this node's dashboards).

use crate::hub::Hub;
use crate::settings::Settings;
use dispatch_actors::cluster::keeper::{self, HeldZones, KeeperHandle, KeeperSettings};
use dispatch_actors::domain::{ZoneId, Zoning};
use dispatch_actors::events::Event;
use dispatch_actors::mesh::{Mesh, MeshConfig};
use dispatch_actors::store::redis::{Leases, RedisStore, StoreConn};
use dispatch_actors::{Engine, Zones};
use std::sync::Arc;
use tokio::sync::{broadcast, watch};

/// What runs while this node is part of the cluster.
pub struct ClusterNode {
    pub node: String,
    pub zoning: Zoning,
    keeper: Option<KeeperHandle>,
    /// The city feed, while it runs (`cluster.city_feed_ms` > 0).
    feed: Option<tokio::task::JoinHandle<()>>,
}

impl ClusterNode {
    /// Joins: the mesh, the keeper, and their followers. Must run inside the actix
    /// System (the engine's actors start on its arbiter).
    pub async fn start(
        settings: &Settings,
        redis: &RedisStore,
        engine: &Engine,
        hub: &Arc<Hub>,
    ) -> std::io::Result<ClusterNode> {
        let cfg = &settings.cluster;
        let node = redis.node_id().to_string();
        let zoning = Zoning::new(cfg.zone_resolution).map_err(std::io::Error::other)?;
        let mesh = Mesh::start(
            MeshConfig::new(&redis.config().prefix, &node),
            redis.conn(),
            redis
                .fresh_conn()
                .map_err(|e| std::io::Error::other(e.to_string()))?,
            Arc::new(engine.node_calls()),
        )
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        engine.join(Arc::new(mesh));
        let leases = redis.leases();
        let keeper = keeper::spawn(leases.clone(), KeeperSettings::new(node.clone(), cfg));
        engine.enable_zones(Zones {
            zoning,
            held: keeper.held(),
            holders: Arc::new(leases.clone()),
        });
        actix_web::rt::spawn(follow_members(
            leases.clone(),
            engine.clone(),
            node.clone(),
            cfg.lease_renew(),
        ));
        let feed = cfg.city_feed().map(|every| {
            crate::city_feed::spawn(
                redis.clone(),
                leases.clone(),
                keeper.held(),
                hub.clone(),
                every,
            )
        });
        actix_web::rt::spawn(list_zones(leases, zoning, engine.subscribe()));
        actix_web::rt::spawn(follow_held(keeper.held(), redis.clone(), engine.clone()));
        tracing::info!(node = %node, "joined the cluster");
        Ok(ClusterNode {
            node,
            zoning,
            keeper: Some(keeper),
            feed,
        })
    }

    /// Leaves at shutdown: leases released at once (their zones move without waiting
    /// for them to lapse), the node withdrawn.
    pub async fn leave(mut self) {
        if let Some(f) = self.feed.take() {
            f.abort();
        }
        if let Some(k) = self.keeper.take() {
            k.stop().await;
        }
    }
}

/// Keeps the engine's peer list (fleet, merchants) to the live nodes.
async fn follow_members(
    leases: Leases<StoreConn>,
    engine: Engine,
    me: String,
    every: std::time::Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match leases.live_nodes().await {
            Ok(nodes) => engine.set_peers(
                nodes
                    .into_keys()
                    .filter(|n| *n != me)
                    .map(|n| Arc::<str>::from(n.as_str())),
            ),
            Err(e) => tracing::debug!(error = %e, "cluster: membership not readable"),
        }
    }
}

/// Zones worth owning are where merchants are: each merchant's zone is listed (those
/// recovered at start, then each new one) so that some node takes its lease.
async fn list_zones(
    leases: Leases<StoreConn>,
    zoning: Zoning,
    mut events: broadcast::Receiver<Event>,
) {
    loop {
        match events.recv().await {
            Ok(Event::MerchantChanged { merchant }) => {
                let zone = zoning.zone_of(merchant.location);
                if let Err(e) = leases.add_zones(&[zone]).await {
                    tracing::warn!(error = %e, %zone, "cluster: zone not listed");
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Follows the zones this node holds: a zone taken is fenced in the store and its live
/// orders rebuilt; a zone lost stops its orders and is no longer written.
async fn follow_held(mut held: watch::Receiver<HeldZones>, redis: RedisStore, engine: Engine) {
    let mut had = HeldZones::new();
    loop {
        let now = held.borrow_and_update().clone();
        for (zone, _) in had.iter().filter(|(z, f)| now.get(z) != Some(f)) {
            redis.drop_zone(*zone);
            let n = engine.drop_zone(*zone).await;
            tracing::info!(%zone, asked = n, node = %redis.node_id(), "cluster: zone lost");
        }
        for (zone, fence) in now.iter().filter(|(z, f)| had.get(z) != Some(f)) {
            redis.hold_zone(*zone, *fence);
            take_zone(&redis, &engine, *zone).await;
        }
        had = now;
        if held.changed().await.is_err() {
            return;
        }
    }
}

async fn take_zone(redis: &RedisStore, engine: &Engine, zone: ZoneId) {
    // Redis may be away for a moment: the zone is not ours to serve until it is read.
    for attempt in 0..20u32 {
        match redis.load_zone_orders(zone).await {
            Ok(records) => {
                let n = engine.adopt_zone(zone, records);
                tracing::info!(%zone, orders = n, node = %redis.node_id(), "cluster: zone taken");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, %zone, attempt, "cluster: zone not readable yet");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
    }
}
