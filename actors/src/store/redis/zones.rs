//! Zones in the store (docs/cluster.md, "Zones, leases and fencing"): which zones exist
//! (the `zones` set), the live orders of one zone (failover reads them), and the zones this
//! store holds with the fencing number it took each with. A write of an order of a zone
//! this store does not hold is refused before it is sent (`Fenced`); one it holds carries
//! `"<node> <fence>"`, and the order script refuses it unless the zone's lease still says
//! exactly that (order_cas.rs), so a node that lost its lease cannot land a write, even
//! one already in flight.

use super::keys::Keys;
use super::records::decode;
use super::{unavailable, RedisStore};
use crate::domain::zone::ZoneId;
use crate::store::{OrderRecord, StoreError};
use redis::Pipeline;

impl RedisStore {
    /// This store may now write orders of `zone`, as the holder of its lease with fencing
    /// number `fence` (the lease keeper calls this once it took the lease).
    pub fn hold_zone(&self, zone: ZoneId, fence: u64) {
        self.held.lock().insert(zone, fence);
    }

    /// This store no longer writes orders of `zone` (its lease lapsed or was let go).
    pub fn drop_zone(&self, zone: ZoneId) {
        self.held.lock().remove(&zone);
    }

    /// The fencing number this store holds `zone` with, if it holds it.
    pub fn held_fence(&self, zone: ZoneId) -> Option<u64> {
        self.held.lock().get(&zone).copied()
    }

    /// The lease value an order write of `zone` must find (`"<node> <fence>"`), or
    /// `Fenced` when this store does not hold the zone.
    pub(super) fn lease_claim(&self, zone: ZoneId) -> Result<String, StoreError> {
        match self.held_fence(zone) {
            Some(fence) => Ok(format!("{} {fence}", self.node)),
            None => {
                metrics::counter!(crate::metric_names::STORE_FENCED_WRITES_TOTAL, "by" => "node")
                    .increment(1);
                Err(StoreError::Fenced(zone.to_string()))
            }
        }
    }

    /// Lists `zone` among the zones worth owning (and read by recovery).
    pub async fn add_zone(&self, zone: ZoneId) -> Result<(), StoreError> {
        let mut c = redis::cmd("SADD");
        c.arg(self.keys.zones()).arg(zone.to_string());
        let key = Some(format!("zone:{zone}"));
        self.submit("zone", vec![c], true, key).await.map(|_| ())
    }

    /// The zones listed so far.
    pub async fn zones(&self) -> Result<Vec<ZoneId>, StoreError> {
        let mut c = redis::cmd("SMEMBERS");
        c.arg(self.keys.zones());
        let zones: Vec<String> = self.read(c).await?;
        Ok(zones.iter().filter_map(|z| ZoneId::parse(z).ok()).collect())
    }

    /// The live orders of `zone`, each with its stored version as the compare-and-set base
    /// (a node taking the zone over rebuilds their actors from these).
    pub async fn load_zone_orders(&self, zone: ZoneId) -> Result<Vec<OrderRecord>, StoreError> {
        let mut c = redis::cmd("SMEMBERS");
        c.arg(self.keys.scoped(Some(zone), "orders:live"));
        let ids: Vec<String> = self.read(c).await?;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(1000) {
            let pipe = live_order_reads(&self.keys, Some(zone), chunk);
            let mut conn = self.conn.clone();
            let rows = tokio::time::timeout(self.cfg.op_timeout, pipe.query_async(&mut conn))
                .await
                .map_err(|_| unavailable("timed out"))?
                .map_err(unavailable)?;
            out.extend(live_records(rows));
        }
        Ok(out)
    }
}

/// The reads of the orders `ids` of `zone` (or of none): one `HMGET` of data and version
/// each, all in one slot.
pub(super) fn live_order_reads(keys: &Keys, zone: Option<ZoneId>, ids: &[String]) -> Pipeline {
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("HMGET")
            .arg(keys.order(zone, id))
            .arg("data")
            .arg("version");
    }
    pipe
}

/// The live orders among `rows` (data, version), each with the stored version as what
/// this node takes the order over at: its compare-and-set base.
pub(super) fn live_records(rows: Vec<(Option<String>, Option<u64>)>) -> Vec<OrderRecord> {
    let mut out = Vec::with_capacity(rows.len());
    for (data, version) in rows {
        if let Some(mut rec) = data.and_then(|d| decode::<OrderRecord>("order", &d)) {
            rec.base_version = version.unwrap_or(rec.order.version);
            if !rec.order.status.is_final() {
                out.push(rec);
            }
        }
    }
    out
}
