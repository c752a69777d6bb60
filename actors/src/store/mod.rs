//! Persistence. The engine writes every state change of an order, rider, merchant and
//! escalation through [`Store`] before it acknowledges the command that caused it, and
//! reads final orders back from it once their actor has stopped. `memory` is the embedded
//! default; [`redis::RedisStore`] is the durable backend (docs/architecture.md, "Store").

pub mod redis;

use crate::domain::escalation::Escalation;
use crate::domain::ladder::Timer;
use crate::domain::merchant::{Item, Merchant};
use crate::domain::offers::OfferBookState;
use crate::domain::order::Order;
use crate::domain::rider::RiderView;
use crate::domain::{EscalationId, GeoPoint, MerchantId, OrderId, RiderId};
use async_trait::async_trait;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
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

/// What a request finds when it reserves its idempotency key
/// ([`Store::reserve_idempotent`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The key is this request's now: run it, then complete or release the key.
    Reserved,
    /// Another request holds the key: still running, or it died less than a lease ago.
    Pending,
    /// A request with this key finished: replay its response.
    Done(StoredResponse),
}

/// One armed supervisor timer of an order: when it is due and how often it has fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerRecord {
    pub timer: Timer,
    pub due_ms: u64,
    pub fired: u32,
}

/// Everything an OrderActor needs to come back after a restart: the order, its offers
/// (open ones with their expiry, decliners, the winner) and its timer deadlines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub order: Order,
    #[serde(default)]
    pub offers: OfferBookState,
    #[serde(default)]
    pub timers: Vec<TimerRecord>,
    #[serde(default)]
    pub radius_m: f64,
    /// `rider_arriving` went out to the merchant (once per order, also across restarts).
    #[serde(default)]
    pub arriving_sent: bool,
    /// The writer's sequence number of this write: bumped on every write, also of changes
    /// that leave `version` as it is (offers, timers), so that of two writes of one order
    /// the later capture wins whichever reaches the store last.
    #[serde(default)]
    pub seq: u64,
    /// The version this actor took the order over at (created: 0, recovered: the stored
    /// version). A durable store refuses the write when another writer has moved the
    /// order past it (compare-and-set). Not stored.
    #[serde(skip)]
    pub base_version: u64,
}

impl OrderRecord {
    /// Which of two writes of one order is newer: the order's version, then the writer's
    /// sequence.
    pub fn write_order(&self) -> (u64, u64) {
        (self.order.version, self.seq)
    }

    pub fn bare(order: Order) -> Self {
        Self {
            order,
            offers: OfferBookState::default(),
            timers: Vec::new(),
            radius_m: 0.0,
            arriving_sent: false,
            seq: 0,
            base_version: 0,
        }
    }
}

/// A customer account: the argon2 hash, never the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    pub username: String,
    pub customer_id: String,
    pub password_hash: String,
}

/// What a durable store hands back at start-up to rebuild the engine.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Orders not in a final state.
    pub orders: Vec<OrderRecord>,
    pub riders: Vec<RiderView>,
    /// Latest position per rider (`positions` is written more often than the rider).
    pub positions: HashMap<RiderId, (GeoPoint, u64)>,
    pub merchants: Vec<(Merchant, Vec<Item>)>,
    pub escalations: Vec<Escalation>,
    /// token → principal (`rider:r_…`, `merchant:m_…`, `customer:c_…`).
    pub tokens: Vec<(String, String)>,
    pub accounts: Vec<AccountRecord>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn save_order(&self, order: &Order) -> Result<(), StoreError>;
    /// Saves an order with its dispatch state and timers. The default keeps only the order.
    async fn save_order_record(&self, rec: &OrderRecord) -> Result<(), StoreError> {
        self.save_order(&rec.order).await
    }
    async fn load_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError>;
    /// The order with its dispatch state (offers, trace, timers). The default has none.
    async fn load_order_record(&self, id: &OrderId) -> Result<Option<OrderRecord>, StoreError> {
        Ok(self.load_order(id).await?.map(OrderRecord::bare))
    }
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
    /// Reserves `key` for the request `owner` before it runs, with a pending marker that
    /// lapses after `lease` (so a request that died mid-way does not hold it for good),
    /// unless a response or another request's marker is there. The default, for stores
    /// shared by no other process, only looks for a response.
    async fn reserve_idempotent(
        &self,
        key: &str,
        _owner: &str,
        _lease: Duration,
    ) -> Result<Reservation, StoreError> {
        Ok(match self.get_idempotent(key).await? {
            Some(r) => Reservation::Done(r),
            None => Reservation::Reserved,
        })
    }
    /// Stores the response of `owner`'s request over its marker (or another's that
    /// lapsed into it); returns what is stored after the call: an earlier response wins.
    async fn complete_idempotent(
        &self,
        key: &str,
        _owner: &str,
        resp: StoredResponse,
        ttl: Duration,
    ) -> Result<StoredResponse, StoreError> {
        self.put_idempotent(key, resp, ttl).await
    }
    /// The request failed, so nothing is stored: drops `owner`'s marker, if it is still
    /// there, so a retry runs at once.
    async fn release_idempotent(&self, _key: &str, _owner: &str) -> Result<(), StoreError> {
        Ok(())
    }
    /// Can the store serve now? (readyz)
    async fn healthy(&self) -> bool;
    /// May state change now? False while a durable store is unreachable or recovering:
    /// the engine refuses changes (503) rather than acknowledge what it cannot store.
    fn writable(&self) -> bool {
        true
    }
    /// The latest accepted position of a rider; a durable store batches these per tick.
    fn record_position(&self, _rider: &RiderId, _at: GeoPoint, _ts_ms: u64) {}
    /// A new token (principal as `rider:r_…`, `merchant:m_…`, `customer:c_…`).
    async fn save_token(&self, _token: &str, _principal: &str) -> Result<(), StoreError> {
        Ok(())
    }
    /// Stores an account unless the username is taken; returns whether it was stored.
    async fn save_account(&self, _account: &AccountRecord) -> Result<bool, StoreError> {
        Ok(true)
    }
    /// Waits (at most `within`) until every write queued so far has reached the store;
    /// false if it could not (graceful shutdown).
    async fn flush(&self, _within: Duration) -> bool {
        true
    }
    /// Everything needed to rebuild the engine after a restart (empty for memory).
    async fn load_snapshot(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot::default())
    }
}

/// How much of what is finished the memory store keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryLimits {
    /// A final order stays readable this long after it became final.
    pub final_retention: Duration,
    /// At most this many final orders are kept; beyond, the oldest go first.
    pub max_final_orders: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        Self {
            final_retention: Duration::from_secs(3600),
            max_final_orders: 100_000,
        }
    }
}

/// Everything in process memory: lost on exit, needs nothing else to run. Live orders
/// stay until they are final; final ones form a bounded archive (`MemoryLimits`), so a
/// city that runs for days keeps the memory of its last hour, not of every order.
#[derive(Default)]
pub struct MemoryStore {
    orders: RwLock<HashMap<OrderId, OrderRecord>>,
    /// Final orders, oldest first, with when they became final.
    finals: parking_lot::Mutex<std::collections::VecDeque<(OrderId, tokio::time::Instant)>>,
    limits: MemoryLimits,
    riders: RwLock<HashMap<RiderId, RiderView>>,
    merchants: RwLock<HashMap<MerchantId, (Merchant, Vec<Item>)>>,
    escalations: RwLock<HashMap<EscalationId, Escalation>>,
    idempotency: RwLock<HashMap<String, (IdemSlot, tokio::time::Instant)>>,
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
            limits,
            ..Self::default()
        }
    }

    /// Orders held: live ones and the archive of final ones.
    pub fn order_count(&self) -> usize {
        self.orders.read().len()
    }

    /// Final orders held in the archive.
    pub fn archived_count(&self) -> usize {
        self.finals.lock().len()
    }

    /// Notes an order that became final, and lets go of final orders past retention or
    /// over the cap. Called with the orders map locked for writing.
    fn archive(&self, orders: &mut HashMap<OrderId, OrderRecord>, id: &OrderId) {
        let now = tokio::time::Instant::now();
        let mut finals = self.finals.lock();
        finals.push_back((id.clone(), now));
        let mut evicted = 0u64;
        while let Some((old, at)) = finals.front() {
            let expired = now.duration_since(*at) >= self.limits.final_retention;
            if !expired && finals.len() <= self.limits.max_final_orders {
                break;
            }
            if orders.get(old).is_some_and(|r| r.order.status.is_final()) {
                orders.remove(old);
                evicted += 1;
            }
            finals.pop_front();
        }
        metrics::counter!(crate::metric_names::STORE_ORDERS_EVICTED_TOTAL).increment(evicted);
        metrics::gauge!(crate::metric_names::STORE_ARCHIVED_ORDERS).set(finals.len() as f64);
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn save_order(&self, order: &Order) -> Result<(), StoreError> {
        self.save_order_record(&OrderRecord::bare(order.clone()))
            .await
    }

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
        let now = tokio::time::Instant::now();
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
        let now = tokio::time::Instant::now();
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

    async fn complete_idempotent(
        &self,
        key: &str,
        _owner: &str,
        resp: StoredResponse,
        ttl: Duration,
    ) -> Result<StoredResponse, StoreError> {
        // A marker (this request's, or another's) gives way to the response; an earlier
        // response stays.
        self.put_idempotent(key, resp, ttl).await
    }

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_older_write_of_an_order_is_skipped_not_a_conflict() {
        let s = MemoryStore::new();
        let mut rec = OrderRecord::bare(crate::domain::order::tests::sample_order());
        rec.order.version = 5;
        s.save_order_record(&rec).await.unwrap();
        let mut older = rec.clone();
        older.order.version = 4;
        assert_eq!(s.save_order_record(&older).await, Ok(()));
        let id = rec.order.order_id.clone();
        assert_eq!(s.load_order(&id).await.unwrap().unwrap().version, 5);
    }

    fn order_in(status: crate::domain::order::OrderStatus, n: u32) -> OrderRecord {
        let mut rec = OrderRecord::bare(crate::domain::order::tests::sample_order());
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

    #[tokio::test]
    async fn the_archive_of_final_orders_is_capped_oldest_first() {
        use crate::domain::order::OrderStatus::Cancelled;
        let s = MemoryStore::with_limits(MemoryLimits {
            final_retention: Duration::from_secs(3600),
            max_final_orders: 3,
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
        let mut first = OrderRecord::bare(crate::domain::order::tests::sample_order());
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
