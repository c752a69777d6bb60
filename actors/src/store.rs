//! Persistence. The engine writes every state change of an order, rider, merchant and
//! escalation through [`Store`] before it acknowledges the command that caused it, and
//! reads final orders back from it once their actor has stopped. `memory` is the embedded
//! default; a durable backend implements the same trait.

use crate::domain::escalation::Escalation;
use crate::domain::merchant::{Item, Merchant};
use crate::domain::order::Order;
use crate::domain::rider::RiderView;
use crate::domain::{EscalationId, MerchantId, OrderId, RiderId};
use async_trait::async_trait;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A write found a newer version already stored (another node moved the order).
    #[error("version conflict on {0}")]
    Conflict(String),
}

/// The first response to an idempotent request, replayed on retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// Hash of the request body, to tell a retry from a reuse of the key.
    pub body_hash: u64,
    pub status: u16,
    pub body: String,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn save_order(&self, order: &Order) -> Result<(), StoreError>;
    async fn load_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError>;
    async fn save_rider(&self, rider: &RiderView) -> Result<(), StoreError>;
    async fn save_merchant(&self, merchant: &Merchant, items: &[Item]) -> Result<(), StoreError>;
    async fn save_escalation(&self, e: &Escalation) -> Result<(), StoreError>;
    async fn load_escalation(&self, id: &EscalationId) -> Result<Option<Escalation>, StoreError>;
    /// Stores `resp` under `key` unless a response is already there; returns what is
    /// stored after the call (the earlier one if there was one).
    async fn put_idempotent(
        &self,
        key: &str,
        resp: StoredResponse,
        ttl: Duration,
    ) -> Result<StoredResponse, StoreError>;
    async fn get_idempotent(&self, key: &str) -> Result<Option<StoredResponse>, StoreError>;
    /// Can the store serve now? (readyz)
    async fn healthy(&self) -> bool;
}

/// Everything in process memory: lost on exit, needs nothing else to run.
#[derive(Default)]
pub struct MemoryStore {
    orders: RwLock<HashMap<OrderId, Order>>,
    riders: RwLock<HashMap<RiderId, RiderView>>,
    merchants: RwLock<HashMap<MerchantId, (Merchant, Vec<Item>)>>,
    escalations: RwLock<HashMap<EscalationId, Escalation>>,
    idempotency: RwLock<HashMap<String, (StoredResponse, tokio::time::Instant)>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn order_count(&self) -> usize {
        self.orders.read().len()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn save_order(&self, order: &Order) -> Result<(), StoreError> {
        let mut orders = self.orders.write();
        if let Some(old) = orders.get(&order.order_id) {
            if old.version > order.version {
                return Err(StoreError::Conflict(order.order_id.to_string()));
            }
        }
        orders.insert(order.order_id.clone(), order.clone());
        Ok(())
    }

    async fn load_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        Ok(self.orders.read().get(id).cloned())
    }

    async fn save_rider(&self, rider: &RiderView) -> Result<(), StoreError> {
        self.riders
            .write()
            .insert(rider.rider_id.clone(), rider.clone());
        Ok(())
    }

    async fn save_merchant(&self, merchant: &Merchant, items: &[Item]) -> Result<(), StoreError> {
        self.merchants.write().insert(
            merchant.merchant_id.clone(),
            (merchant.clone(), items.to_vec()),
        );
        Ok(())
    }

    async fn save_escalation(&self, e: &Escalation) -> Result<(), StoreError> {
        self.escalations
            .write()
            .insert(e.escalation_id.clone(), e.clone());
        Ok(())
    }

    async fn load_escalation(&self, id: &EscalationId) -> Result<Option<Escalation>, StoreError> {
        Ok(self.escalations.read().get(id).cloned())
    }

    async fn put_idempotent(
        &self,
        key: &str,
        resp: StoredResponse,
        ttl: Duration,
    ) -> Result<StoredResponse, StoreError> {
        let now = tokio::time::Instant::now();
        let mut map = self.idempotency.write();
        if let Some((stored, expires)) = map.get(key) {
            if *expires > now {
                return Ok(stored.clone());
            }
        }
        map.insert(key.to_string(), (resp.clone(), now + ttl));
        Ok(resp)
    }

    async fn get_idempotent(&self, key: &str) -> Result<Option<StoredResponse>, StoreError> {
        let now = tokio::time::Instant::now();
        Ok(self
            .idempotency
            .read()
            .get(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(r, _)| r.clone()))
    }

    async fn healthy(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idempotent_put_keeps_the_first_response() {
        let s = MemoryStore::new();
        let first = StoredResponse {
            body_hash: 1,
            status: 201,
            body: "a".into(),
        };
        let second = StoredResponse {
            body_hash: 1,
            status: 201,
            body: "b".into(),
        };
        let ttl = Duration::from_secs(60);
        assert_eq!(
            s.put_idempotent("k", first.clone(), ttl).await.unwrap(),
            first
        );
        assert_eq!(s.put_idempotent("k", second, ttl).await.unwrap(), first);
        assert_eq!(s.get_idempotent("k").await.unwrap(), Some(first));
        assert_eq!(s.get_idempotent("other").await.unwrap(), None);
    }
}
