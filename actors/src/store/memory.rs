//! The embedded store: everything in process memory, lost on exit.

use super::archive::Archive;
use super::{OrderRecord, Reservation, Store, StoreError, StoredResponse};
use crate::domain::escalation::Escalation;
use crate::domain::merchant::{Item, Merchant};
use crate::domain::order::Order;
use crate::domain::rider::RiderView;
use crate::domain::share::ShareLink;
use crate::domain::{DeviceId, EscalationId, MerchantId, OrderId, RiderId};
use crate::metric_names;
use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// How much of what is finished the memory store keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryLimits {
    /// A final order stays readable this long after it became final.
    pub final_retention: Duration,
    /// At most this many final orders are kept; beyond, the oldest go first.
    pub max_final_orders: usize,
    /// Resolved escalations stay this long (open ones always stay).
    pub resolved_retention: Duration,
    /// At most this many resolved escalations are kept; beyond, the oldest go first.
    pub max_resolved_escalations: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        Self {
            final_retention: Duration::from_secs(3600),
            max_final_orders: 100_000,
            resolved_retention: Duration::from_secs(3600),
            max_resolved_escalations: 100_000,
        }
    }
}

/// Everything in process memory: lost on exit, needs nothing else to run. Live orders and
/// open escalations stay; final orders and resolved escalations form bounded archives
/// (`MemoryLimits`), so a city that runs for days keeps the memory of its last hour, not
/// of its whole history.
pub struct MemoryStore {
    orders: RwLock<HashMap<OrderId, OrderRecord>>,
    finals: Mutex<Archive<OrderId>>,
    riders: RwLock<HashMap<RiderId, RiderView>>,
    merchants: RwLock<HashMap<MerchantId, (Merchant, Vec<Item>)>>,
    escalations: RwLock<HashMap<EscalationId, Escalation>>,
    resolved: Mutex<Archive<EscalationId>>,
    idempotency: RwLock<HashMap<String, (IdemSlot, Instant)>>,
    devices: RwLock<HashMap<DeviceId, RiderId>>,
    shares: Mutex<super::shares::ShareBook>,
}

/// An idempotency key in memory: reserved by a running request, or its response.
#[derive(Debug, Clone)]
enum IdemSlot {
    Pending { owner: String },
    Done(StoredResponse),
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_limits(limits: MemoryLimits) -> Self {
        Self {
            orders: RwLock::default(),
            finals: Mutex::new(Archive::new(
                limits.final_retention,
                limits.max_final_orders,
            )),
            riders: RwLock::default(),
            merchants: RwLock::default(),
            escalations: RwLock::default(),
            resolved: Mutex::new(Archive::new(
                limits.resolved_retention,
                limits.max_resolved_escalations,
            )),
            idempotency: RwLock::default(),
            devices: RwLock::default(),
            shares: Mutex::default(),
        }
    }

    /// The rider a stored device belongs to.
    pub fn device_rider(&self, device: &str) -> Option<RiderId> {
        self.devices.read().get(device).cloned()
    }

    /// Orders held: live ones and the archive of final ones.
    pub fn order_count(&self) -> usize {
        self.orders.read().len()
    }

    /// Final orders held in the archive.
    pub fn archived_count(&self) -> usize {
        self.finals.lock().len()
    }

    /// Escalations held: open ones and the archive of resolved ones.
    pub fn escalation_count(&self) -> usize {
        self.escalations.read().len()
    }

    /// Notes an order that became final, and lets go of final orders past retention or
    /// over the cap. Called with the orders map locked for writing.
    fn archive(&self, orders: &mut HashMap<OrderId, OrderRecord>, id: &OrderId) {
        let mut finals = self.finals.lock();
        let gone = finals.add(id.clone(), Instant::now());
        let mut evicted = 0u64;
        for old in gone {
            if orders.get(&old).is_some_and(|r| r.order.status.is_final()) {
                orders.remove(&old);
                evicted += 1;
            }
        }
        metrics::counter!(metric_names::STORE_ORDERS_EVICTED_TOTAL).increment(evicted);
        metrics::gauge!(metric_names::STORE_ARCHIVED_ORDERS).set(finals.len() as f64);
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_limits(MemoryLimits::default())
    }
}

#[async_trait]
impl Store for MemoryStore {
    /// One process owns every order here, so a write older than the stored one is a late
    /// arrival of this actor's own earlier save (replies and background saves complete in
    /// any order): it is skipped, not a conflict.
    async fn save_order_record(&self, rec: &OrderRecord) -> Result<(), StoreError> {
        let mut orders = self.orders.write();
        let was_final = match orders.get(&rec.order.order_id) {
            Some(old) if old.write_order() >= rec.write_order() => return Ok(()),
            Some(old) => old.order.status.is_final(),
            None => false,
        };
        orders.insert(rec.order.order_id.clone(), rec.clone());
        if rec.order.status.is_final() && !was_final {
            self.archive(&mut orders, &rec.order.order_id);
        }
        Ok(())
    }

    async fn load_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        Ok(self.orders.read().get(id).map(|r| r.order.clone()))
    }

    async fn load_order_record(&self, id: &OrderId) -> Result<Option<OrderRecord>, StoreError> {
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
        let mut all = self.escalations.write();
        let before = all.insert(e.escalation_id.clone(), e.clone());
        if !e.is_open() && before.is_none_or(|old| old.is_open()) {
            for old in self
                .resolved
                .lock()
                .add(e.escalation_id.clone(), Instant::now())
            {
                if all.get(&old).is_some_and(|x| !x.is_open()) {
                    all.remove(&old);
                }
            }
        }
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
        let now = Instant::now();
        let mut map = self.idempotency.write();
        if let Some((IdemSlot::Done(stored), expires)) = map.get(key) {
            if *expires > now {
                return Ok(stored.clone());
            }
        }
        if map.len() % 4096 == 4095 {
            // Expired keys go now and then, so the map stays as large as 24 h of keys.
            map.retain(|_, (_, expires)| *expires > now);
        }
        map.insert(key.to_string(), (IdemSlot::Done(resp.clone()), now + ttl));
        Ok(resp)
    }

    async fn get_idempotent(&self, key: &str) -> Result<Option<StoredResponse>, StoreError> {
        let now = Instant::now();
        Ok(match self.idempotency.read().get(key) {
            Some((IdemSlot::Done(r), exp)) if *exp > now => Some(r.clone()),
            _ => None,
        })
    }

    async fn reserve_idempotent(
        &self,
        key: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Reservation, StoreError> {
        let now = Instant::now();
        let mut map = self.idempotency.write();
        match map.get(key) {
            Some((IdemSlot::Done(r), exp)) if *exp > now => {
                return Ok(Reservation::Done(r.clone()))
            }
            Some((IdemSlot::Pending { .. }, exp)) if *exp > now => return Ok(Reservation::Pending),
            _ => {}
        }
        let slot = IdemSlot::Pending {
            owner: owner.to_string(),
        };
        map.insert(key.to_string(), (slot, now + lease));
        Ok(Reservation::Reserved)
    }

    // complete_idempotent: the trait's default (the response goes over any marker, an
    // earlier response stays) is exactly what the memory store does.

    async fn release_idempotent(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let mut map = self.idempotency.write();
        if matches!(map.get(key), Some((IdemSlot::Pending { owner: o }, _)) if o == owner) {
            map.remove(key);
        }
        Ok(())
    }

    async fn healthy(&self) -> bool {
        true
    }

    async fn save_device(&self, device: &DeviceId, rider: &RiderId) -> Result<(), StoreError> {
        self.devices.write().insert(device.clone(), rider.clone());
        Ok(())
    }

    /// The map, as a store shared by several registries would answer (tests of a
    /// cluster node's read-through lookups).
    async fn load_device(&self, device: &str) -> Result<Option<RiderId>, StoreError> {
        Ok(self.device_rider(device))
    }

    async fn delete_device(&self, device: &DeviceId) -> Result<(), StoreError> {
        self.devices.write().remove(device);
        Ok(())
    }

    async fn save_share_link(&self, link: &ShareLink) -> Result<(), StoreError> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.shares.lock().save(link, now_ms);
        Ok(())
    }

    async fn share_link(&self, token: &str) -> Result<Option<ShareLink>, StoreError> {
        Ok(self.shares.lock().get(token))
    }

    async fn share_links_of(&self, order: &OrderId) -> Result<Vec<ShareLink>, StoreError> {
        Ok(self.shares.lock().of(order))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::tests::sample_order;

    #[tokio::test]
    async fn an_older_write_of_an_order_is_skipped_not_a_conflict() {
        let s = MemoryStore::new();
        let mut rec = OrderRecord::bare(sample_order());
        rec.order.version = 5;
        s.save_order_record(&rec).await.unwrap();
        let mut older = rec.clone();
        older.order.version = 4;
        assert_eq!(s.save_order_record(&older).await, Ok(()));
        let id = rec.order.order_id.clone();
        assert_eq!(s.load_order(&id).await.unwrap().unwrap().version, 5);
    }

    fn order_in(status: crate::domain::order::OrderStatus, n: u32) -> OrderRecord {
        let mut rec = OrderRecord::bare(sample_order());
        rec.order.order_id = OrderId::parse(&format!("o_{n}")).unwrap();
        rec.order.status = status;
        rec.order.version = 2;
        rec
    }

    #[tokio::test(start_paused = true)]
    async fn final_orders_leave_after_retention_live_ones_stay() {
        use crate::domain::order::OrderStatus::{Accepted, Delivered};
        let s = MemoryStore::with_limits(MemoryLimits {
            final_retention: Duration::from_secs(60),
            max_final_orders: 1000,
            ..MemoryLimits::default()
        });
        s.save_order_record(&order_in(Accepted, 1)).await.unwrap();
        s.save_order_record(&order_in(Delivered, 2)).await.unwrap();
        tokio::time::advance(Duration::from_secs(30)).await;
        s.save_order_record(&order_in(Delivered, 3)).await.unwrap();
        assert_eq!((s.order_count(), s.archived_count()), (3, 2));
        tokio::time::advance(Duration::from_secs(31)).await;
        // Eviction runs as orders become final: o_2 is 61 s old, o_3 31 s.
        s.save_order_record(&order_in(Delivered, 4)).await.unwrap();
        let id = |n: u32| OrderId::parse(&format!("o_{n}")).unwrap();
        assert!(s.load_order(&id(2)).await.unwrap().is_none());
        assert!(s.load_order(&id(3)).await.unwrap().is_some());
        assert!(
            s.load_order(&id(1)).await.unwrap().is_some(),
            "live orders stay"
        );
        assert_eq!((s.order_count(), s.archived_count()), (3, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn resolved_escalations_leave_after_retention_open_ones_stay() {
        use crate::domain::escalation::{EscalationBook, EscalationKind, Subject};
        let s = MemoryStore::with_limits(MemoryLimits {
            resolved_retention: Duration::from_secs(60),
            ..MemoryLimits::default()
        });
        let mut book = EscalationBook::default();
        let oid = |n: u32| OrderId::parse(&format!("o_{n}")).unwrap();
        let open = book.raise(EscalationKind::NoRider, Some(oid(1)), None, "m".into(), 1);
        let done = book.raise(EscalationKind::NoRider, Some(oid(2)), None, "m".into(), 1);
        s.save_escalation(&open).await.unwrap();
        s.save_escalation(&done).await.unwrap();
        let done = book
            .clear(EscalationKind::NoRider, &Subject::Order(oid(2)), 5)
            .unwrap();
        s.save_escalation(&done).await.unwrap();
        tokio::time::advance(Duration::from_secs(61)).await;
        let later = book.raise(EscalationKind::NoRider, Some(oid(3)), None, "m".into(), 9);
        let later = book
            .clear(EscalationKind::NoRider, &Subject::Order(oid(3)), 9)
            .map(|_| book.get(&later.escalation_id).unwrap().clone())
            .unwrap();
        s.save_escalation(&later).await.unwrap();
        assert!(s
            .load_escalation(&done.escalation_id)
            .await
            .unwrap()
            .is_none());
        assert!(s
            .load_escalation(&open.escalation_id)
            .await
            .unwrap()
            .is_some());
        assert!(s
            .load_escalation(&later.escalation_id)
            .await
            .unwrap()
            .is_some());
        assert_eq!(s.escalation_count(), 2);
    }

    #[tokio::test]
    async fn the_archive_of_final_orders_is_capped_oldest_first() {
        use crate::domain::order::OrderStatus::Cancelled;
        let s = MemoryStore::with_limits(MemoryLimits {
            final_retention: Duration::from_secs(3600),
            max_final_orders: 3,
            ..MemoryLimits::default()
        });
        for n in 1..=5 {
            s.save_order_record(&order_in(Cancelled, n)).await.unwrap();
        }
        assert_eq!((s.order_count(), s.archived_count()), (3, 3));
        let id = |n: u32| OrderId::parse(&format!("o_{n}")).unwrap();
        assert!(s.load_order(&id(2)).await.unwrap().is_none());
        assert!(s.load_order(&id(3)).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn of_two_writes_with_one_version_the_later_capture_wins_whatever_lands_last() {
        let s = MemoryStore::new();
        let mut first = OrderRecord::bare(sample_order());
        first.order.version = 3;
        first.seq = 7;
        let mut later = first.clone();
        later.seq = 8;
        later.radius_m = 9000.0;
        s.save_order_record(&later).await.unwrap();
        s.save_order_record(&first).await.unwrap();
        let id = first.order.order_id.clone();
        let stored = s.load_order_record(&id).await.unwrap().unwrap();
        assert_eq!((stored.seq, stored.radius_m), (8, 9000.0));
    }

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
