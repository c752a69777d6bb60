//! Webhooks in Redis (docs/architecture.md, "Store"): three hashes, each value a JSON
//! record. `webhooks` (subscription id → subscription), `webhook_pending` (delivery id →
//! delivery still to be sent, with its attempts and next attempt time) and
//! `webhook_dead` (delivery id → dead letter). A delivery moves between the last two in
//! one pipeline (HSET one, HDEL the other), so it is never in both and never in neither.
//!
//! Subscriptions are written before they are acknowledged and are not kept through an
//! outage (the caller gets 503). Delivery changes are the worker's, which already holds
//! them in memory: kept through an outage like timer steps, latest per delivery.

use super::records::decode;
use super::{unavailable, RedisStore};
use crate::domain::{DeliveryId, WebhookId};
use crate::store::{DeliveryRecord, StoreError, WebhookRecord, WebhookSnapshot};
use redis::Cmd;
use std::collections::HashMap;

const WEBHOOKS: &str = "webhooks";
const PENDING: &str = "webhook_pending";
const DEAD: &str = "webhook_dead";

impl RedisStore {
    pub(super) async fn put_webhook(&self, w: &WebhookRecord) -> Result<(), StoreError> {
        let data = serde_json::to_string(w).map_err(unavailable)?;
        let mut c = redis::cmd("HSET");
        c.arg(self.key(WEBHOOKS)).arg(w.id.as_str()).arg(data);
        self.submit("webhook", vec![c], false, None)
            .await
            .map(|_| ())
    }

    pub(super) async fn drop_webhook(
        &self,
        id: &WebhookId,
        deliveries: &[DeliveryId],
    ) -> Result<(), StoreError> {
        let mut c = redis::cmd("HDEL");
        c.arg(self.key(WEBHOOKS)).arg(id.as_str());
        let mut cmds = vec![c];
        cmds.extend(self.delivery_deletes(deliveries));
        self.submit("webhook", cmds, false, None).await.map(|_| ())
    }

    pub(super) async fn put_delivery(&self, d: &DeliveryRecord) -> Result<(), StoreError> {
        let data = serde_json::to_string(d).map_err(unavailable)?;
        let (into, out_of) = if d.is_dead() {
            (DEAD, PENDING)
        } else {
            (PENDING, DEAD)
        };
        let mut set = redis::cmd("HSET");
        set.arg(self.key(into)).arg(d.id.as_str()).arg(data);
        let mut del = redis::cmd("HDEL");
        del.arg(self.key(out_of)).arg(d.id.as_str());
        let key = Some(self.key(&format!("webhook_delivery:{}", d.id)));
        self.submit("webhook_delivery", vec![set, del], true, key)
            .await
            .map(|_| ())
    }

    pub(super) async fn drop_deliveries(&self, ids: &[DeliveryId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        // One delivery's delete supersedes its kept write while Redis is away.
        let key = match ids {
            [one] => Some(self.key(&format!("webhook_delivery:{one}"))),
            _ => None,
        };
        self.submit("webhook_delivery", self.delivery_deletes(ids), true, key)
            .await
            .map(|_| ())
    }

    fn delivery_deletes(&self, ids: &[DeliveryId]) -> Vec<Cmd> {
        if ids.is_empty() {
            return Vec::new();
        }
        let ids: Vec<&str> = ids.iter().map(DeliveryId::as_str).collect();
        [PENDING, DEAD]
            .into_iter()
            .map(|hash| {
                let mut c = redis::cmd("HDEL");
                c.arg(self.key(hash)).arg(&ids);
                c
            })
            .collect()
    }

    pub(super) async fn read_webhooks(&self) -> Result<WebhookSnapshot, StoreError> {
        let mut hashes = Vec::new();
        for hash in [WEBHOOKS, PENDING, DEAD] {
            let mut c = redis::cmd("HGETALL");
            c.arg(self.key(hash));
            let h: HashMap<String, String> = self.read(c).await?;
            hashes.push(h);
        }
        let records = |h: &HashMap<String, String>| -> Vec<DeliveryRecord> {
            h.values()
                .filter_map(|v| decode("webhook delivery", v))
                .collect()
        };
        Ok(WebhookSnapshot {
            webhooks: hashes[0]
                .values()
                .filter_map(|v| decode("webhook", v))
                .collect(),
            pending: records(&hashes[1]),
            dead: records(&hashes[2]),
        })
    }
}
