//! Persistence. The engine writes every state change of an order, rider, merchant and
//! escalation through [`Store`] before it acknowledges the command that caused it, and
//! reads final orders back from it once their actor has stopped. `memory` is the embedded
//! default; [`redis::RedisStore`] is the durable backend (docs/architecture.md, "Store").

mod archive;
mod memory;
pub mod redis;
mod shares;
#[cfg(test)]
pub(crate) mod test_cluster;
mod webhooks;

pub use memory::{MemoryLimits, MemoryStore};
pub use webhooks::{DeliveryRecord, WebhookRecord, WebhookSnapshot};

use crate::domain::escalation::Escalation;
use crate::domain::ladder::Timer;
use crate::domain::merchant::{Item, Merchant};
use crate::domain::offers::OfferBookState;
use crate::domain::order::Order;
use crate::domain::rider::RiderView;
use crate::domain::share::ShareLink;
use crate::domain::zone::ZoneId;
use crate::domain::{DeliveryId, DeviceId, EscalationId, GeoPoint, OrderId, RiderId, WebhookId};
use crate::events::Event;
use async_trait::async_trait;
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
    /// An order write of a zone this node does not hold (or no longer holds: its lease
    /// names another node or fencing number). Nothing was written; the zone's new owner
    /// takes such changes (docs/cluster.md, "Fencing").
    #[error("zone {0} moved to another node, retry")]
    Fenced(String),
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
    /// The order's zone (its merchant's) when zones are on: its keys carry the zone's hash
    /// tag and its writes are fenced by the zone's lease. None (zones off): as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<ZoneId>,
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
            zone: None,
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
    /// Tracking-app device id → rider id (revoked devices are not there).
    pub devices: Vec<(String, String)>,
}

/// What recovery needs before any rider: the orders (they say what each rider holds),
/// merchants, escalations, accounts, and how many riders are to come.
#[derive(Debug, Clone, Default)]
pub struct SnapshotHead {
    /// Orders not in a final state.
    pub orders: Vec<OrderRecord>,
    pub merchants: Vec<(Merchant, Vec<Item>)>,
    pub escalations: Vec<Escalation>,
    pub accounts: Vec<AccountRecord>,
    /// Riders the store lists (they follow in [`SnapshotPart::Riders`] chunks).
    pub riders: usize,
}

/// A rider as recovery reads it: its stored view and its latest position, if it has one.
pub type RiderRecord = (RiderView, Option<(GeoPoint, u64)>);

/// A snapshot read in parts, so recovery rebuilds riders while the rest is still being
/// read: riders in chunks after the head; tokens in chunks at any time; `Done` last.
#[derive(Debug, Clone)]
pub enum SnapshotPart {
    Head(SnapshotHead),
    Riders(Vec<RiderRecord>),
    /// token → principal.
    Tokens(Vec<(String, String)>),
    /// Tracking-app device id → rider id.
    Devices(Vec<(String, String)>),
    /// Everything was read (a reader that stops without it did not finish).
    Done,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Saves an order alone, as a record with no dispatch state or timers.
    async fn save_order(&self, order: &Order) -> Result<(), StoreError> {
        self.save_order_record(&OrderRecord::bare(order.clone()))
            .await
    }
    /// Saves an order with its dispatch state and timers.
    async fn save_order_record(&self, rec: &OrderRecord) -> Result<(), StoreError>;
    /// Saves an order together with the `order_changed` events its changes announce. A
    /// store with an event log appends them in the same atomic step as the record, so a
    /// crash can never keep the change and lose its event (or the other way round). The
    /// default has no log and saves the record alone.
    async fn save_order_with_events(
        &self,
        rec: &OrderRecord,
        _events: &[Event],
    ) -> Result<(), StoreError> {
        self.save_order_record(rec).await
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
    /// Still reading the engine's state back after a start (tokens, orders and riders
    /// not all known yet). Only a durable store ever is.
    fn recovering(&self) -> bool {
        false
    }
    fn writable(&self) -> bool {
        true
    }
    /// The latest accepted position of a rider; a durable store batches these per tick.
    fn record_position(&self, _rider: &RiderId, _at: GeoPoint, _ts_ms: u64) {}
    /// A new token (principal as `rider:r_…`, `merchant:m_…`, `customer:c_…`).
    async fn save_token(&self, _token: &str, _principal: &str) -> Result<(), StoreError> {
        Ok(())
    }
    /// A tracking-app device of `rider` (docs/protocol.md, "Tracking apps"), kept until
    /// revoked; stored before the device id is handed out.
    async fn save_device(&self, device: &DeviceId, rider: &RiderId) -> Result<(), StoreError>;
    /// Revokes a device: its fixes are refused from now on, also after a restart.
    async fn delete_device(&self, device: &DeviceId) -> Result<(), StoreError>;
    /// Forgets tokens (revoked): a restart must not bring them back.
    async fn delete_tokens(&self, _tokens: &[String]) -> Result<(), StoreError> {
        Ok(())
    }
    /// The stored grant of a token (`rider:r_…@<expires_ms>`), for a node sharing the
    /// store with the node that issued it (docs/cluster.md, "Tokens"). None in a store
    /// no other process shares.
    async fn load_token(&self, _token: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    /// Every stored token of `holder` (`rider:r_…`), whichever node issued it.
    async fn tokens_of(&self, _holder: &str) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    /// Revokes `holder`: forgets `tokens` and the holder's token list, and tells every
    /// node sharing the store (see [`Store::revocations_after`]).
    async fn revoke_tokens(&self, _holder: &str, tokens: &[String]) -> Result<(), StoreError> {
        self.delete_tokens(tokens).await
    }
    /// Holders revoked after the position `after` (empty: start from now): the next
    /// position and the holders. Nothing in a store no other process shares.
    async fn revocations_after(&self, after: &str) -> Result<(String, Vec<String>), StoreError> {
        Ok((after.to_string(), Vec::new()))
    }
    /// Which node runs rider `id`'s actor now (several nodes, docs/cluster.md): written
    /// when an actor starts on a node, read by a node its socket opens on.
    async fn set_rider_node(&self, _id: &RiderId, _node: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn rider_node(&self, _id: &RiderId) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    /// The rider a tracking-app device reports for, as the store has it now (several
    /// nodes: a device registered or revoked on any node). None in a store no other
    /// process shares: each process keeps its own list (`DeviceRegistry`).
    async fn load_device(&self, _device: &str) -> Result<Option<RiderId>, StoreError> {
        Ok(None)
    }
    /// A rider as stored, with its latest position (a node taking a rider whose actor is
    /// nowhere rebuilds it from this). None in a store no other process shares.
    async fn load_rider(&self, _id: &RiderId) -> Result<Option<RiderRecord>, StoreError> {
        Ok(None)
    }
    /// An account as stored, for a node that has not seen it (registered on another).
    async fn load_account(&self, _username: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(None)
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
    /// Stores a share link (new, or revoked: `revoked_ms` set), keyed by its token and
    /// listed under its order. A link is kept at least until it expires. The default is for
    /// stores that keep none (test doubles): it refuses.
    async fn save_share_link(&self, _link: &ShareLink) -> Result<(), StoreError> {
        Err(StoreError::Unavailable(
            "this store keeps no share links".into(),
        ))
    }
    /// The link a token names, if it is kept (an expired one may be gone).
    async fn share_link(&self, _token: &str) -> Result<Option<ShareLink>, StoreError> {
        Ok(None)
    }
    /// The links kept for an order, oldest first.
    async fn share_links_of(&self, _order: &OrderId) -> Result<Vec<ShareLink>, StoreError> {
        Ok(Vec::new())
    }
    /// Everything needed to rebuild the engine after a restart (empty for memory).
    async fn load_snapshot(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot::default())
    }
    // Webhooks (store/webhooks.rs). The webhook worker keeps the working copy; the
    // defaults, for stores that do not outlive the process, keep nothing.
    /// A new subscription; stored before it is acknowledged.
    async fn save_webhook(&self, _webhook: &WebhookRecord) -> Result<(), StoreError> {
        Ok(())
    }
    /// Deletes a subscription and the listed deliveries (pending or dead) of it.
    async fn delete_webhook(
        &self,
        _id: &WebhookId,
        _deliveries: &[DeliveryId],
    ) -> Result<(), StoreError> {
        Ok(())
    }
    /// A delivery as it is now: pending, or a dead letter (`dead_ms` set); either way it
    /// is no longer in the other list.
    async fn save_delivery(&self, _delivery: &DeliveryRecord) -> Result<(), StoreError> {
        Ok(())
    }
    /// Forgets deliveries (delivered, or dead letters pushed out by the cap).
    async fn delete_deliveries(&self, _ids: &[DeliveryId]) -> Result<(), StoreError> {
        Ok(())
    }
    /// Every subscription, pending delivery and dead letter (empty for memory).
    async fn load_webhooks(&self) -> Result<WebhookSnapshot, StoreError> {
        Ok(WebhookSnapshot::default())
    }
}
