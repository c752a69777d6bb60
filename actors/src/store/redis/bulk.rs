//! Bulk import: many records written straight to Redis in one pipeline per call, through
//! the same command builders as the write path, so what lands is exactly what the engine
//! would have written (`dispatch-load seed-redis` fills a store this way to measure
//! recovery at city scale). Not a path the engine itself uses: no writer queue, no
//! retries, nothing kept through an outage; an error fails the whole call.

use super::order_cas::CAS_ORDER_LUA;
use super::positions::position_cmds;
use super::{unavailable, RedisStore};
use crate::domain::merchant::{Item, Merchant};
use crate::domain::rider::RiderView;
use crate::domain::{GeoPoint, RiderId};
use crate::store::{OrderRecord, StoreError};
use redis::{Cmd, Value};

impl RedisStore {
    /// Writes live or final orders with their dispatch state and timers (the order
    /// compare-and-set script, as `save_order_record`). An order another writer already
    /// moved past the record's `base_version` is a conflict and fails the call.
    pub async fn import_orders(&self, orders: &[OrderRecord]) -> Result<(), StoreError> {
        let mut cmds = Vec::with_capacity(orders.len());
        let mut cas = Vec::with_capacity(orders.len());
        for r in orders {
            cas.push(cmds.len());
            cmds.push(self.order_cmd(r, &[])?);
            cmds.extend(self.order_zone_cmds(r));
        }
        let replies = self.import(cmds, true).await?;
        let conflicts = cas
            .iter()
            .filter(|&&i| replies.get(i) == Some(&Value::Int(0)))
            .count();
        if conflicts > 0 {
            return Err(StoreError::Conflict(format!(
                "{conflicts} of {} orders already stored by another writer",
                orders.len()
            )));
        }
        Ok(())
    }

    /// Writes riders as `save_rider` does.
    pub async fn import_riders(&self, riders: &[RiderView]) -> Result<(), StoreError> {
        let mut cmds = Vec::with_capacity(riders.len() * 2);
        for r in riders {
            cmds.extend(self.rider_cmds(r)?);
        }
        self.import(cmds, false).await.map(|_| ())
    }

    /// Writes riders' latest positions as the position flusher does.
    pub async fn import_positions(
        &self,
        fixes: &[(RiderId, GeoPoint, u64)],
    ) -> Result<(), StoreError> {
        let cmds = position_cmds(
            &self.key("positions"),
            &self.key("geo"),
            fixes.iter().map(|(r, p, ts)| (r, *p, *ts)),
        );
        self.import(cmds, false).await.map(|_| ())
    }

    /// Writes merchants with their menus as `save_merchant` does.
    pub async fn import_merchants(
        &self,
        merchants: &[(Merchant, Vec<Item>)],
    ) -> Result<(), StoreError> {
        let mut cmds = Vec::with_capacity(merchants.len() * 2);
        for (m, items) in merchants {
            cmds.extend(self.merchant_cmds(m, items)?);
        }
        self.import(cmds, false).await.map(|_| ())
    }

    /// Writes tokens as `save_token` does (principal as `rider:r_…`, `merchant:m_…`,
    /// `customer:c_…`).
    pub async fn import_tokens(&self, tokens: &[(String, String)]) -> Result<(), StoreError> {
        let cmds = tokens.iter().map(|(t, p)| self.token_cmd(t, p)).collect();
        self.import(cmds, false).await.map(|_| ())
    }

    /// One pipeline of `cmds` on the store's connection; the order script is loaded first
    /// when they use it. Replies of `cmds` only.
    async fn import(&self, cmds: Vec<Cmd>, load_script: bool) -> Result<Vec<Value>, StoreError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        if load_script {
            pipe.cmd("SCRIPT").arg("LOAD").arg(CAS_ORDER_LUA).ignore();
        }
        for c in cmds {
            pipe.add_command(c);
        }
        let mut conn = self.conn.clone();
        tokio::time::timeout(self.cfg.op_timeout, pipe.query_async(&mut conn))
            .await
            .map_err(|_| unavailable("timed out"))?
            .map_err(unavailable)
    }
}
