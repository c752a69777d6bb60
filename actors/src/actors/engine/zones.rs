//! Orders owned by zone (docs/cluster.md, "Zones, leases and fencing"). With zones on, an
//! order's actor lives on the node holding its zone's lease (the zone of its pickup): an
//! order created on another node is created there, a call for it goes there, and when a
//! node takes a zone it rebuilds the zone's live orders from the store; when it loses one
//! their actors stop without writing.

use super::{not_found, Engine};
use crate::actors::order::OrderActor;
use crate::actors::remote::wire::{Answer, Call};
use crate::actors::remote::OrderRef;
use crate::cluster::keeper::HeldZones;
use crate::domain::order::Order;
use crate::domain::{CustomerId, GeoPoint, ItemId, MerchantId, OrderId, ZoneId, Zoning};
use crate::error::EngineError;
use crate::protocol::RelinquishIn;
use crate::store::{OrderRecord, StoreError};
use actix::prelude::*;
use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::watch;

/// Who holds a zone this node does not (the lease table).
#[async_trait]
pub trait ZoneHolders: Send + Sync + 'static {
    async fn holder(&self, zone: ZoneId) -> Result<Option<String>, StoreError>;
}

#[async_trait]
impl<C> ZoneHolders for crate::store::redis::Leases<C>
where
    C: redis::aio::ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn holder(&self, zone: ZoneId) -> Result<Option<String>, StoreError> {
        Ok(self.holders([zone]).await?.remove(&zone).map(|h| h.node))
    }
}

/// This engine's view of zone ownership.
pub struct Zones {
    pub zoning: Zoning,
    /// The zones this node holds now, with their fencing numbers (the lease keeper's).
    pub held: watch::Receiver<HeldZones>,
    pub holders: Arc<dyn ZoneHolders>,
}

impl Engine {
    /// Turns zone ownership on (once; false if it was on already).
    pub fn enable_zones(&self, zones: Zones) -> bool {
        self.shared.zones.set(zones).is_ok()
    }

    /// Does this node run the order's actor now?
    pub fn hosts_order(&self, id: &OrderId) -> bool {
        self.shared.dir.order(id).is_some()
    }

    /// The zone an order belongs to (its pickup's), when zones are on.
    pub fn order_zone(&self, order: &Order) -> Option<ZoneId> {
        let zones = self.shared.zones.get()?;
        let at = GeoPoint::new(order.pickup.lat, order.pickup.lon).ok()?;
        Some(zones.zoning.zone_of(at))
    }

    /// Where calls for `zone` go: None here (zones off, or this node holds it), else the
    /// holder's node id.
    async fn zone_node(&self, zone: Option<ZoneId>) -> Result<Option<Arc<str>>, EngineError> {
        let (Some(zones), Some(zone)) = (self.shared.zones.get(), zone) else {
            return Ok(None);
        };
        if zones.held.borrow().contains_key(&zone) {
            return Ok(None);
        }
        let me = self.shared.peers.get().map(|p| p.node().to_string());
        match zones.holders.holder(zone).await {
            // The lease is ours but this node has not taken the zone up yet.
            Ok(Some(node)) if Some(&node) == me.as_ref() => Err(EngineError::Unavailable(format!(
                "zone {zone} is being taken over; retry"
            ))),
            Ok(Some(node)) => Ok(Some(node.into())),
            Ok(None) => Err(EngineError::Unavailable(format!(
                "zone {zone} has no node at the moment; retry"
            ))),
            Err(e) => Err(EngineError::Unavailable(e.to_string())),
        }
    }

    /// Creates an order on the node holding its merchant's zone (here, or there through
    /// the mesh). None: it belongs here.
    pub(super) async fn create_elsewhere(
        &self,
        order_id: &OrderId,
        customer_id: &CustomerId,
        merchant_id: &MerchantId,
        items: &[(ItemId, u32)],
        dropoff: GeoPoint,
    ) -> Result<Option<Order>, EngineError> {
        let Some(zones) = self.shared.zones.get() else {
            return Ok(None);
        };
        let merchant = self.merchant(merchant_id).await?.merchant;
        let zone = zones.zoning.zone_of(merchant.location);
        let Some(node) = self.zone_node(Some(zone)).await? else {
            return Ok(None);
        };
        let peers = self
            .shared
            .peers
            .get()
            .ok_or_else(|| EngineError::Unavailable("this node has not joined".into()))?;
        let call = Call::CreateOrder {
            order_id: order_id.clone(),
            customer_id: customer_id.clone(),
            merchant_id: merchant_id.clone(),
            items: items.to_vec(),
            dropoff,
        };
        let answer = match peers.call(&node, call.encode()).await {
            Ok(body) => Answer::decode(&body),
            Err(e) => Answer::failed(e),
        };
        let order = answer.into_order()?;
        self.place_order(&order.order_id, Some(node));
        Ok(Some(order))
    }

    /// The live order's actor, here or on the node holding its zone (found through the
    /// store when this node has not heard of it). None: not live anywhere.
    pub(super) async fn locate_order(&self, id: &OrderId) -> Result<Option<OrderRef>, EngineError> {
        if let Some(o) = self.shared.order_ref(id) {
            return Ok(Some(o));
        }
        if self.shared.zones.get().is_none() {
            return Ok(None);
        }
        let Some(rec) = self
            .shared
            .store
            .load_order_record(id)
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?
        else {
            return Err(not_found("order", id));
        };
        if rec.order.status.is_final() {
            return Ok(None);
        }
        match self.zone_node(self.order_zone(&rec.order)).await? {
            Some(node) => {
                self.place_order(id, Some(node));
                Ok(self.shared.order_ref(id))
            }
            // Ours, but not rebuilt yet (the zone was just taken): retry shortly.
            None => Err(EngineError::Unavailable(format!(
                "order {id} is being taken over; retry"
            ))),
        }
    }

    /// Looks an order's node up again in the store and the lease table (after the node it
    /// was known on did not answer); the known node stays until a new one is found.
    pub(crate) async fn relocate_order(&self, id: &OrderId) -> Result<(), EngineError> {
        let Some(rec) = self
            .shared
            .store
            .load_order_record(id)
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?
        else {
            return Ok(());
        };
        if let Some(node) = self.zone_node(self.order_zone(&rec.order)).await? {
            self.place_order(id, Some(node));
        }
        Ok(())
    }

    /// This node took `zone`: the zone's live orders (`records`, from the store) get
    /// their actors here, timers at their stored due times. Returns how many started.
    pub fn adopt_zone(&self, zone: ZoneId, records: Vec<OrderRecord>) -> usize {
        let mut n = 0;
        for rec in records {
            if rec.order.status.is_final() || self.order_zone(&rec.order) != Some(zone) {
                continue;
            }
            let id = rec.order.order_id.clone();
            if self.shared.dir.order(&id).is_some() {
                continue;
            }
            self.place_order(&id, None);
            // On the engine's arbiter, whatever task the zone was taken on.
            let shared = self.shared.clone();
            let addr = OrderActor::start_in_arbiter(&self.shared.home, move |_| {
                OrderActor::restore(rec, shared)
            });
            self.shared.dir.orders.write().insert(id, addr);
            n += 1;
        }
        n
    }

    /// This node lost `zone` (its lease lapsed or moved): the zone's order actors stop
    /// without writing; the new holder rebuilds them from the store. Returns once each
    /// has left the directory (so the zone can be taken again at once); how many order
    /// actors were asked (each checks whether it is in the zone).
    pub async fn drop_zone(&self, zone: ZoneId) -> usize {
        let addrs: Vec<Addr<OrderActor>> =
            self.shared.dir.orders.read().values().cloned().collect();
        let n = addrs.len();
        // Each actor checks its own zone (the directory holds no zone per order).
        futures_util::future::join_all(addrs.iter().map(|a| a.send(RelinquishIn(zone)))).await;
        n
    }
}
