//! The records: which keys and commands each [`Store`] call writes and reads, and how the
//! values are encoded. Writes of changes the engine already holds in memory are marked
//! `retain` (kept through an outage, latest per record); writes that only count once
//! Redis has them (a new order, idempotency keys, tokens, accounts) are not.

use super::events::stream_entry;
use super::order_cas::cas_outcome;
use super::positions::{keep_latest, settled};
use super::{unavailable, RedisStore};
use crate::domain::escalation::Escalation;
use crate::domain::merchant::{Item, Merchant};
use crate::domain::order::Order;
use crate::domain::rider::RiderView;
use crate::domain::share::ShareLink;
use crate::domain::zone::ZoneId;
use crate::domain::{DeliveryId, DeviceId, EscalationId, GeoPoint, OrderId, RiderId, WebhookId};
use crate::events::Event;
use crate::store::{
    AccountRecord, DeliveryRecord, OrderRecord, Reservation, Snapshot, Store, StoreError,
    StoredResponse, WebhookRecord, WebhookSnapshot,
};
use async_trait::async_trait;
use redis::{Cmd, Value};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A merchant is stored with its menu: one record, so recovery never sees one without the
/// other.
#[derive(Serialize, Deserialize)]
pub(super) struct MerchantRecord {
    pub(super) merchant: Merchant,
    pub(super) items: Vec<Item>,
}

/// A record that does not decode is logged and skipped rather than failing recovery: one
/// bad record must not keep the whole engine down.
pub(super) fn decode<T: for<'de> Deserialize<'de>>(what: &str, s: &str) -> Option<T> {
    match serde_json::from_str(s) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(what, error = %e, "unreadable record skipped");
            None
        }
    }
}

/// The commands of each record's write, shared by the write path and bulk import
/// (`bulk`), so both leave the same keys and encodings.
impl RedisStore {
    /// A rider: its view as JSON under `rider:{id}`, its id in the `riders` set.
    pub(super) fn rider_cmds(&self, rider: &RiderView) -> Result<Vec<Cmd>, StoreError> {
        let data = serde_json::to_string(rider).map_err(unavailable)?;
        let mut set = redis::cmd("SET");
        set.arg(self.key(&format!("rider:{}", rider.rider_id)))
            .arg(data);
        let mut add = redis::cmd("SADD");
        add.arg(self.key("riders")).arg(rider.rider_id.as_str());
        Ok(vec![set, add])
    }

    /// A merchant with its menu as one JSON record, its id in the `merchants` set.
    pub(super) fn merchant_cmds(
        &self,
        merchant: &Merchant,
        items: &[Item],
    ) -> Result<Vec<Cmd>, StoreError> {
        let rec = MerchantRecord {
            merchant: merchant.clone(),
            items: items.to_vec(),
        };
        let data = serde_json::to_string(&rec).map_err(unavailable)?;
        let mut set = redis::cmd("SET");
        set.arg(self.key(&format!("merchant:{}", merchant.merchant_id)))
            .arg(data);
        let mut add = redis::cmd("SADD");
        add.arg(self.key("merchants"))
            .arg(merchant.merchant_id.as_str());
        Ok(vec![set, add])
    }

    /// A token and its principal in the `tokens` hash.
    pub(super) fn token_cmd(&self, token: &str, principal: &str) -> Cmd {
        let mut c = redis::cmd("HSET");
        c.arg(self.key("tokens")).arg(token).arg(principal);
        c
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn save_order_record(&self, rec: &OrderRecord) -> Result<(), StoreError> {
        self.save_order_with_events(rec, &[]).await
    }

    async fn save_order_with_events(
        &self,
        rec: &OrderRecord,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let entries: Vec<(String, String)> = events.iter().filter_map(stream_entry).collect();
        let mut cmds = vec![self.order_cmd(rec, &entries)?];
        // An order's first write: where its keys are (its zone), with it.
        if rec.base_version == 0 && rec.order.version <= 1 {
            cmds.extend(self.order_zone_cmds(rec));
        }
        // A brand-new order (base 0) is not in memory unless the write succeeds.
        let retain = rec.base_version > 0 || rec.order.version > 1;
        // Kept while Redis is away, a later write of the order replaces an earlier one
        // ("latest wins"), unless it carries events: those must all reach the stream.
        let key = entries
            .is_empty()
            .then(|| format!("order:{}", rec.order.order_id));
        let v = self.submit("order", cmds, retain, key).await?;
        cas_outcome(rec, v.first())
    }

    async fn load_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        Ok(self.load_order_record(id).await?.map(|r| r.order))
    }

    /// An order of a zone is under its zone's tag: `order_zone:<id>` says which.
    async fn load_order_record(&self, id: &OrderId) -> Result<Option<OrderRecord>, StoreError> {
        let mut z = redis::cmd("GET");
        z.arg(self.keys.order_zone(id.as_str()));
        let zone: Option<String> = self.read(z).await?;
        let zone = match zone.map(|z| ZoneId::parse(&z)).transpose() {
            Ok(zone) => zone,
            Err(e) => return Err(unavailable(format!("order {id}: {e}"))),
        };
        let mut c = redis::cmd("HGET");
        c.arg(self.keys.order(zone, id.as_str())).arg("data");
        let s: Option<String> = self.read(c).await?;
        Ok(s.and_then(|s| decode::<OrderRecord>("order", &s)))
    }

    async fn save_rider(&self, rider: &RiderView) -> Result<(), StoreError> {
        let cmds = self.rider_cmds(rider)?;
        let key = Some(format!("rider:{}", rider.rider_id));
        self.submit("rider", cmds, true, key).await.map(|_| ())
    }

    async fn save_merchant(&self, merchant: &Merchant, items: &[Item]) -> Result<(), StoreError> {
        let cmds = self.merchant_cmds(merchant, items)?;
        let key = Some(format!("merchant:{}", merchant.merchant_id));
        self.submit("merchant", cmds, true, key).await.map(|_| ())
    }

    async fn save_escalation(&self, e: &Escalation) -> Result<(), StoreError> {
        let data = serde_json::to_string(e).map_err(unavailable)?;
        let mut c = redis::cmd("HSET");
        c.arg(self.key("escalations"))
            .arg(e.escalation_id.as_str())
            .arg(data);
        let key = Some(format!("escalation:{}", e.escalation_id));
        self.submit("escalation", vec![c], true, key)
            .await
            .map(|_| ())
    }

    async fn load_escalation(&self, id: &EscalationId) -> Result<Option<Escalation>, StoreError> {
        let mut c = redis::cmd("HGET");
        c.arg(self.key("escalations")).arg(id.as_str());
        let s: Option<String> = self.read(c).await?;
        Ok(s.and_then(|s| decode("escalation", &s)))
    }

    async fn put_idempotent(
        &self,
        key: &str,
        resp: StoredResponse,
        ttl: Duration,
    ) -> Result<StoredResponse, StoreError> {
        // SET NX then GET in one pipeline: the first response stored wins, and every caller
        // (this one included) gets that one back.
        let k = self.key(key);
        let mut set = redis::cmd("SET");
        set.arg(&k)
            .arg(encode_response(&resp))
            .arg("NX")
            .arg("EX")
            .arg(ttl.as_secs().max(1));
        let mut get = redis::cmd("GET");
        get.arg(&k);
        let v = self
            .submit("idempotency", vec![set, get], false, None)
            .await?;
        Ok(v.get(1)
            .and_then(value_string)
            .and_then(|s| decode_response(&s))
            .unwrap_or(resp))
    }

    async fn get_idempotent(&self, key: &str) -> Result<Option<StoredResponse>, StoreError> {
        let mut c = redis::cmd("GET");
        c.arg(self.key(key));
        let s: Option<String> = self.read(c).await?;
        Ok(s.and_then(|s| decode_response(&s)))
    }

    async fn healthy(&self) -> bool {
        self.status.healthy.load(Ordering::SeqCst) && self.status.recovered.load(Ordering::SeqCst)
    }

    async fn reserve_idempotent(
        &self,
        key: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Reservation, StoreError> {
        self.reserve_key(key, owner, lease).await
    }

    async fn complete_idempotent(
        &self,
        key: &str,
        _owner: &str,
        resp: StoredResponse,
        ttl: Duration,
    ) -> Result<StoredResponse, StoreError> {
        self.complete_key(key, resp, ttl).await
    }

    async fn release_idempotent(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        self.release_key(key, owner).await
    }

    fn recovering(&self) -> bool {
        !self.status.recovered.load(Ordering::SeqCst)
    }

    fn writable(&self) -> bool {
        self.status.healthy.load(Ordering::SeqCst) && self.status.recovered.load(Ordering::SeqCst)
    }

    fn record_position(&self, rider: &RiderId, at: GeoPoint, ts_ms: u64) {
        keep_latest(&self.positions, rider, at, ts_ms);
    }

    async fn save_token(&self, token: &str, principal: &str) -> Result<(), StoreError> {
        let cmds = vec![
            self.token_cmd(token, principal),
            self.token_index_cmd(token, principal),
        ];
        self.submit("token", cmds, false, None).await.map(|_| ())
    }

    async fn load_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        self.read_token(token).await
    }

    async fn tokens_of(&self, holder: &str) -> Result<Vec<String>, StoreError> {
        self.read_tokens_of(holder).await
    }

    async fn revoke_tokens(&self, holder: &str, tokens: &[String]) -> Result<(), StoreError> {
        self.write_revocation(holder, tokens).await
    }

    async fn revocations_after(&self, after: &str) -> Result<(String, Vec<String>), StoreError> {
        self.read_revocations(after).await
    }

    async fn set_rider_node(&self, id: &RiderId, node: &str) -> Result<(), StoreError> {
        self.write_rider_node(id, node).await
    }

    async fn rider_node(&self, id: &RiderId) -> Result<Option<String>, StoreError> {
        self.read_rider_node(id).await
    }

    async fn load_rider(
        &self,
        id: &RiderId,
    ) -> Result<Option<crate::store::RiderRecord>, StoreError> {
        self.read_rider(id).await
    }

    async fn load_account(&self, username: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.read_account(username).await
    }

    /// `devices` hash: device id → rider id. Not retained through an outage: the device
    /// is handed out (or its revocation answered) only once Redis has the write.
    async fn save_device(&self, device: &DeviceId, rider: &RiderId) -> Result<(), StoreError> {
        let mut c = redis::cmd("HSET");
        c.arg(self.key("devices"))
            .arg(device.expose())
            .arg(rider.as_str());
        self.submit("device", vec![c], false, None)
            .await
            .map(|_| ())
    }

    async fn load_device(&self, device: &str) -> Result<Option<RiderId>, StoreError> {
        let mut c = redis::cmd("HGET");
        c.arg(self.key("devices")).arg(device);
        let rider: Option<String> = self.read(c).await?;
        Ok(rider.and_then(|r| RiderId::parse(&r).ok()))
    }

    async fn delete_device(&self, device: &DeviceId) -> Result<(), StoreError> {
        let mut c = redis::cmd("HDEL");
        c.arg(self.key("devices")).arg(device.expose());
        self.submit("device", vec![c], false, None)
            .await
            .map(|_| ())
    }

    async fn delete_tokens(&self, tokens: &[String]) -> Result<(), StoreError> {
        if tokens.is_empty() {
            return Ok(());
        }
        let mut c = redis::cmd("HDEL");
        c.arg(self.key("tokens")).arg(tokens);
        self.submit("token", vec![c], false, None).await.map(|_| ())
    }

    async fn save_account(&self, account: &AccountRecord) -> Result<bool, StoreError> {
        let data = serde_json::to_string(account).map_err(unavailable)?;
        let mut c = redis::cmd("HSETNX");
        c.arg(self.key("accounts")).arg(&account.username).arg(data);
        let v = self.submit("account", vec![c], false, None).await?;
        Ok(matches!(v.first(), Some(Value::Int(1))))
    }

    async fn flush(&self, within: Duration) -> bool {
        // The writer is FIFO: once a PING queued now is answered, everything before it was
        // written (or kept for later, if Redis is away: then this fails).
        let deadline = Instant::now() + within;
        let ping = redis::cmd("PING");
        let answered = matches!(
            tokio::time::timeout(within, self.submit("flush", vec![ping], false, None)).await,
            Ok(Ok(_))
        );
        // Positions: one more tick of the flusher, and its pipeline answered. Waiting only
        // for the map to empty is not enough: the flusher empties it before it writes.
        let mut positions_written = settled(&self.positions);
        while answered && !positions_written && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
            positions_written = settled(&self.positions);
        }
        answered && positions_written && self.pending_writes() == 0
    }

    async fn load_snapshot(&self) -> Result<Snapshot, StoreError> {
        self.read_snapshot().await
    }

    // Webhooks: keys and encodings in `webhooks`.
    async fn save_webhook(&self, webhook: &WebhookRecord) -> Result<(), StoreError> {
        self.put_webhook(webhook).await
    }

    async fn delete_webhook(
        &self,
        id: &WebhookId,
        deliveries: &[DeliveryId],
    ) -> Result<(), StoreError> {
        self.drop_webhook(id, deliveries).await
    }

    async fn save_delivery(&self, delivery: &DeliveryRecord) -> Result<(), StoreError> {
        self.put_delivery(delivery).await
    }

    async fn delete_deliveries(&self, ids: &[DeliveryId]) -> Result<(), StoreError> {
        self.drop_deliveries(ids).await
    }

    async fn load_webhooks(&self) -> Result<WebhookSnapshot, StoreError> {
        self.read_webhooks().await
    }

    async fn save_share_link(&self, link: &ShareLink) -> Result<(), StoreError> {
        self.put_share_link(link).await
    }

    async fn share_link(&self, token: &str) -> Result<Option<ShareLink>, StoreError> {
        self.get_share_link(token).await
    }

    async fn share_links_of(&self, order: &OrderId) -> Result<Vec<ShareLink>, StoreError> {
        self.list_share_links(order).await
    }
}

/// An idempotent response as one string, `body_hash\nstatus\nbody`: the body goes last
/// because it may itself contain newlines.
pub(super) fn encode_response(r: &StoredResponse) -> String {
    format!("{}\n{}\n{}", r.body_hash, r.status, r.body)
}

pub(super) fn decode_response(s: &str) -> Option<StoredResponse> {
    let mut it = s.splitn(3, '\n');
    Some(StoredResponse {
        body_hash: it.next()?.parse().ok()?,
        status: it.next()?.parse().ok()?,
        body: it.next()?.to_string(),
    })
}

/// A reply inside a pipeline's answers comes back as a raw value, not yet a `String`.
pub(super) fn value_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}
