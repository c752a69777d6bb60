//! The snapshot recovery starts from: live orders, riders, merchants, positions,
//! escalations, tokens and accounts (docs/architecture.md, "Recovery").

use super::positions::parse_position;
use super::records::{decode, MerchantRecord};
use super::{unavailable, RedisStore};
use crate::domain::escalation::Escalation;
use crate::domain::rider::RiderView;
use crate::domain::RiderId;
use crate::store::{AccountRecord, OrderRecord, Snapshot, StoreError};
use std::collections::HashMap;

impl RedisStore {
    /// Everything recovery needs, read in chunked pipelines so a large store does not mean
    /// one round trip per record.
    /// The whole hash under `name`.
    async fn hash(&self, name: &str) -> Result<HashMap<String, String>, StoreError> {
        let mut c = redis::cmd("HGETALL");
        c.arg(self.key(name));
        self.read(c).await
    }

    pub(super) async fn read_snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut snap = Snapshot::default();
        // Orders not in a final state.
        let mut c = redis::cmd("SMEMBERS");
        c.arg(self.key("orders:live"));
        let ids: Vec<String> = self.read(c).await?;
        for chunk in ids.chunks(500) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("HMGET")
                    .arg(self.key(&format!("order:{id}")))
                    .arg("data")
                    .arg("version");
            }
            let mut conn = self.conn.clone();
            // A chunk of 500 orders is a far larger answer than one read: more time.
            let rows: Vec<(Option<String>, Option<u64>)> =
                tokio::time::timeout(self.cfg.op_timeout * 5, pipe.query_async(&mut conn))
                    .await
                    .map_err(|_| unavailable("timed out"))?
                    .map_err(unavailable)?;
            for (data, version) in rows {
                if let Some(mut rec) = data.and_then(|d| decode::<OrderRecord>("order", &d)) {
                    // The stored version is what this node takes the order over at: its
                    // compare-and-set base.
                    rec.base_version = version.unwrap_or(rec.order.version);
                    if !rec.order.status.is_final() {
                        snap.orders.push(rec);
                    }
                }
            }
        }
        // Riders and merchants: a set of ids, one string each.
        for (set, prefix) in [("riders", "rider:"), ("merchants", "merchant:")] {
            let mut c = redis::cmd("SMEMBERS");
            c.arg(self.key(set));
            let ids: Vec<String> = self.read(c).await?;
            for chunk in ids.chunks(500) {
                let mut c = redis::cmd("MGET");
                for id in chunk {
                    c.arg(self.key(&format!("{prefix}{id}")));
                }
                let rows: Vec<Option<String>> = self.read(c).await?;
                for s in rows.into_iter().flatten() {
                    if set == "riders" {
                        if let Some(r) = decode::<RiderView>("rider", &s) {
                            snap.riders.push(r);
                        }
                    } else if let Some(m) = decode::<MerchantRecord>("merchant", &s) {
                        snap.merchants.push((m.merchant, m.items));
                    }
                }
            }
        }
        let pos = self.hash("positions").await?;
        for (r, s) in pos {
            if let (Ok(r), Some(p)) = (RiderId::parse(&r), parse_position(&s)) {
                snap.positions.insert(r, p);
            }
        }
        let escs = self.hash("escalations").await?;
        snap.escalations = escs
            .values()
            .filter_map(|s| decode::<Escalation>("escalation", s))
            .collect();
        snap.escalations.sort_by(|a, b| {
            a.opened_ms
                .cmp(&b.opened_ms)
                .then_with(|| a.escalation_id.cmp(&b.escalation_id))
        });
        let tokens = self.hash("tokens").await?;
        snap.tokens = tokens.into_iter().collect();
        let accounts = self.hash("accounts").await?;
        snap.accounts = accounts
            .values()
            .filter_map(|s| decode::<AccountRecord>("account", s))
            .collect();
        Ok(snap)
    }
}
