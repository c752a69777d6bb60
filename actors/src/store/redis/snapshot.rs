//! The snapshot recovery starts from: live orders, riders, merchants, positions,
//! escalations, tokens and accounts (docs/architecture.md, "Recovery").
//!
//! At city scale (500k riders) this is millions of fields, so every part is read at once
//! and each in chunks with several in flight: Redis (one thread) always has the next
//! request while the engine decodes the last answer, and no single answer is so large
//! that it blocks Redis or outlasts `op_timeout`. The two big hashes (positions, tokens)
//! are read with `HSCAN` pages rather than one `HGETALL`.

use super::positions::parse_position;
use super::records::{decode, MerchantRecord};
use super::{unavailable, RedisStore};
use crate::domain::escalation::Escalation;
use crate::domain::rider::RiderView;
use crate::domain::{GeoPoint, RiderId};
use crate::store::{AccountRecord, OrderRecord, Snapshot, StoreError};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::Deserialize;
use std::collections::HashMap;

/// Records per read: one `MGET`, or one pipeline of `HMGET`s.
const CHUNK: usize = 1000;
/// Reads of one part in flight at once.
const IN_FLIGHT: usize = 4;
/// Fields asked for per `HSCAN` page.
const SCAN_COUNT: usize = 5000;

impl RedisStore {
    pub(super) async fn read_snapshot(&self) -> Result<Snapshot, StoreError> {
        let (orders, riders, merchants, positions, escalations, tokens, accounts) = tokio::try_join!(
            self.live_orders(),
            self.set_records::<RiderView>("riders", "rider:"),
            self.set_records::<MerchantRecord>("merchants", "merchant:"),
            self.positions_read(),
            self.hash_records::<Escalation>("escalations"),
            self.scan_hash("tokens", |t, p| Some((t, p))),
            self.hash_records::<AccountRecord>("accounts"),
        )?;
        let mut escalations = escalations;
        escalations.sort_by(|a, b| {
            a.opened_ms
                .cmp(&b.opened_ms)
                .then_with(|| a.escalation_id.cmp(&b.escalation_id))
        });
        Ok(Snapshot {
            orders,
            riders,
            positions,
            merchants: merchants
                .into_iter()
                .map(|m| (m.merchant, m.items))
                .collect(),
            escalations,
            tokens,
            accounts,
        })
    }

    /// Orders not in a final state, each with the stored version as its compare-and-set
    /// base.
    async fn live_orders(&self) -> Result<Vec<OrderRecord>, StoreError> {
        let mut c = redis::cmd("SMEMBERS");
        c.arg(self.key("orders:live"));
        let ids: Vec<String> = self.read(c).await?;
        let chunks: Vec<Vec<OrderRecord>> = stream::iter(in_chunks(ids))
            .map(|chunk| async move {
                let mut pipe = redis::pipe();
                for id in &chunk {
                    pipe.cmd("HMGET")
                        .arg(self.key(&format!("order:{id}")))
                        .arg("data")
                        .arg("version");
                }
                let mut conn = self.conn.clone();
                let rows: Vec<(Option<String>, Option<u64>)> =
                    tokio::time::timeout(self.cfg.op_timeout, pipe.query_async(&mut conn))
                        .await
                        .map_err(|_| unavailable("timed out"))?
                        .map_err(unavailable)?;
                let mut out = Vec::with_capacity(rows.len());
                for (data, version) in rows {
                    if let Some(mut rec) = data.and_then(|d| decode::<OrderRecord>("order", &d)) {
                        // The stored version is what this node takes the order over at: its
                        // compare-and-set base.
                        rec.base_version = version.unwrap_or(rec.order.version);
                        if !rec.order.status.is_final() {
                            out.push(rec);
                        }
                    }
                }
                Ok::<_, StoreError>(out)
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(chunks.into_iter().flatten().collect())
    }

    /// Every record listed in the set `set`, each a JSON string at `{prefix}{id}`.
    async fn set_records<T: for<'de> Deserialize<'de>>(
        &self,
        set: &str,
        prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut c = redis::cmd("SMEMBERS");
        c.arg(self.key(set));
        let ids: Vec<String> = self.read(c).await?;
        let chunks: Vec<Vec<T>> = stream::iter(in_chunks(ids))
            .map(|chunk| async move {
                let mut c = redis::cmd("MGET");
                for id in &chunk {
                    c.arg(self.key(&format!("{prefix}{id}")));
                }
                let rows: Vec<Option<String>> = self.read(c).await?;
                Ok::<_, StoreError>(
                    rows.iter()
                        .flatten()
                        .filter_map(|s| decode::<T>(set, s))
                        .collect::<Vec<T>>(),
                )
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(chunks.into_iter().flatten().collect())
    }

    /// The latest position of every rider (`positions`, written more often than riders).
    async fn positions_read(&self) -> Result<HashMap<RiderId, (GeoPoint, u64)>, StoreError> {
        let found = self
            .scan_hash("positions", |r, s| {
                Some((RiderId::parse(&r).ok()?, parse_position(&s)?))
            })
            .await?;
        let mut map = HashMap::with_capacity(found.len());
        map.extend(found);
        Ok(map)
    }

    /// Every field of the hash `name`, page by page (`HSCAN`), as `f` makes of it. A field
    /// may come twice if the hash grows while it is read; the callers' maps keep one.
    async fn scan_hash<T>(
        &self,
        name: &str,
        f: impl Fn(String, String) -> Option<T>,
    ) -> Result<Vec<T>, StoreError> {
        let key = self.key(name);
        let mut out = Vec::new();
        let mut cursor = String::from("0");
        loop {
            let mut c = redis::cmd("HSCAN");
            c.arg(&key).arg(&cursor).arg("COUNT").arg(SCAN_COUNT);
            let (next, page): (String, Vec<(String, String)>) = self.read(c).await?;
            out.extend(page.into_iter().filter_map(|(k, v)| f(k, v)));
            if next == "0" {
                return Ok(out);
            }
            cursor = next;
        }
    }

    /// The decoded values of a small hash (`escalations`, `accounts`), read whole.
    async fn hash_records<T: for<'de> Deserialize<'de>>(
        &self,
        name: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut c = redis::cmd("HVALS");
        c.arg(self.key(name));
        let values: Vec<String> = self.read(c).await?;
        Ok(values.iter().filter_map(|s| decode(name, s)).collect())
    }
}

/// `ids` in owned chunks of `CHUNK` (moved, not copied).
fn in_chunks(ids: Vec<String>) -> impl Iterator<Item = Vec<String>> {
    let mut it = ids.into_iter();
    std::iter::from_fn(move || {
        let chunk: Vec<String> = it.by_ref().take(CHUNK).collect();
        (!chunk.is_empty()).then_some(chunk)
    })
}
