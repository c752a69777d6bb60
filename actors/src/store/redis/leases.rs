//! Zone leases, node membership and the zones registry in Redis (docs/cluster.md, "Zones,
//! leases and fencing").
//!
//! - A zone's lease `{prefix}{z:<cell>}:lease` holds `"<node> <fence>"` and expires; its
//!   fence `{prefix}{z:<cell>}:fence` never does: taking a free lease increments it, so
//!   every new holder's number is higher than any before. Each step is one Lua script on
//!   the two keys of one zone, which share a hash tag and so a slot: atomic on a plain
//!   Redis and on a Redis Cluster alike.
//! - Nodes announce themselves with an expiring `{prefix}node:<id>` and their id in the set
//!   `{prefix}nodes`; the live ones are the members whose key still exists (dead ones are
//!   removed as they are found, never with KEYS or SCAN).
//! - `{prefix}zones` lists the zones worth owning.
//!
//! No command names keys of two slots, so [`Leases`] runs over any connection: the store's
//! own, or a Redis Cluster connection.

use super::records::value_string;
use super::{unavailable, RedisStore, StoreConn};
use crate::cluster::plan::Holder;
use crate::domain::ZoneId;
use crate::store::StoreError;
use futures_util::future::join_all;
use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// KEYS: lease, fence. ARGV: node, ttl in ms. A free lease is taken with the next fence; a
/// lease already this node's is extended and keeps its fence. Returns the fence, or nil
/// when another node holds the lease.
const ACQUIRE_LUA: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur then
  local sp = string.find(cur, ' [^ ]*$')
  if sp and string.sub(cur, 1, sp - 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(string.sub(cur, sp + 1))
  end
  return false
end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. fence, 'PX', ARGV[2])
return fence
"#;

/// KEYS: lease. ARGV: `"<node> <fence>"`, ttl in ms. Extends the lease only if it is
/// exactly that holder's. Returns 1 if extended.
const RENEW_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// KEYS: lease. ARGV: `"<node> <fence>"`. Deletes the lease only if it is exactly that
/// holder's (a stale holder never frees a newer holder's lease). Returns 1 if deleted.
const RELEASE_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// The key of one zone's `rest` (`lease`, `fence`, ...): `{prefix}{z:<cell>}:<rest>`, so
/// every key of one zone sits in one slot.
fn zone_key(prefix: &str, zone: ZoneId, rest: &str) -> String {
    format!("{prefix}{{{}}}:{rest}", zone.tag())
}

/// Leases, membership and the zones registry over one connection. Cheap to clone.
#[derive(Clone)]
pub struct Leases<C> {
    conn: C,
    prefix: Arc<str>,
}

impl RedisStore {
    /// The leases of this store's Redis, under its prefix.
    pub fn leases(&self) -> Leases<StoreConn> {
        Leases::new(self.conn.clone(), &self.cfg.prefix)
    }
}

impl<C> Leases<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Leases over `conn` (a plain or a cluster connection), every key under `prefix`.
    pub fn new(conn: C, prefix: &str) -> Leases<C> {
        Leases {
            conn,
            prefix: prefix.into(),
        }
    }

    fn zone_key(&self, zone: ZoneId, rest: &str) -> String {
        zone_key(&self.prefix, zone, rest)
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    async fn query<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn).await.map_err(unavailable)
    }

    fn eval(script: &str, keys: &[String], args: impl redis::ToRedisArgs) -> Cmd {
        let mut c = redis::cmd("EVAL");
        c.arg(script).arg(keys.len()).arg(keys).arg(args);
        c
    }

    /// Takes `zone`'s lease for `node` if it is free (a new, higher fence) or already
    /// `node`'s (its fence, the lease extended). None: another node holds it.
    pub async fn acquire(
        &self,
        zone: ZoneId,
        node: &str,
        ttl_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        let keys = [self.zone_key(zone, "lease"), self.zone_key(zone, "fence")];
        self.query(Self::eval(ACQUIRE_LUA, &keys, (node, ttl_ms.max(1))))
            .await
    }

    /// Extends `zone`'s lease if it is exactly `node`'s with `fence`. False: it lapsed, or
    /// another holder (or this node with a newer fence) has it.
    pub async fn renew(
        &self,
        zone: ZoneId,
        node: &str,
        fence: u64,
        ttl_ms: u64,
    ) -> Result<bool, StoreError> {
        let keys = [self.zone_key(zone, "lease")];
        let v = Holder::value(node, fence);
        let n: i64 = self
            .query(Self::eval(RENEW_LUA, &keys, (v, ttl_ms.max(1))))
            .await?;
        Ok(n == 1)
    }

    /// Gives up `zone`'s lease if it is exactly `node`'s with `fence`. True if it was.
    pub async fn release(&self, zone: ZoneId, node: &str, fence: u64) -> Result<bool, StoreError> {
        let keys = [self.zone_key(zone, "lease")];
        let n: i64 = self
            .query(Self::eval(RELEASE_LUA, &keys, Holder::value(node, fence)))
            .await?;
        Ok(n == 1)
    }

    /// The current holder of each of `zones` that has one (a GET each, sent together: the
    /// keys are in different slots, so never one MGET).
    pub async fn holders(
        &self,
        zones: impl IntoIterator<Item = ZoneId>,
    ) -> Result<BTreeMap<ZoneId, Holder>, StoreError> {
        let reads = zones.into_iter().map(|z| async move {
            let mut c = redis::cmd("GET");
            c.arg(self.zone_key(z, "lease"));
            let v: Value = self.query(c).await?;
            Ok::<_, StoreError>((z, value_string(&v).and_then(|s| Holder::parse(&s))))
        });
        let mut out = BTreeMap::new();
        for r in join_all(reads).await {
            if let (z, Some(h)) = r? {
                out.insert(z, h);
            }
        }
        Ok(out)
    }

    /// Announces `node` as live for `ttl_ms`, with `info` (its address, for operators).
    pub async fn announce(&self, node: &str, info: &str, ttl_ms: u64) -> Result<(), StoreError> {
        let mut set = redis::cmd("SET");
        set.arg(self.key(&format!("node:{node}")))
            .arg(info)
            .arg("PX")
            .arg(ttl_ms.max(1));
        let mut add = redis::cmd("SADD");
        add.arg(self.key("nodes")).arg(node);
        // The key first: a node in the set without its key would be removed as dead.
        self.query::<()>(set).await?;
        self.query::<()>(add).await
    }

    /// Takes `node` out of the live list at once (a graceful stop).
    pub async fn withdraw(&self, node: &str) -> Result<(), StoreError> {
        let mut del = redis::cmd("DEL");
        del.arg(self.key(&format!("node:{node}")));
        let mut rem = redis::cmd("SREM");
        rem.arg(self.key("nodes")).arg(node);
        self.query::<()>(del).await?;
        self.query::<()>(rem).await
    }

    /// Every node whose announcement has not lapsed, with its info, sorted by id. A dead
    /// one found in the set is removed from it (a node that announces again meanwhile
    /// adds itself back at its next announcement).
    pub async fn live_nodes(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let mut members = redis::cmd("SMEMBERS");
        members.arg(self.key("nodes"));
        let ids: Vec<String> = self.query(members).await?;
        let reads = ids.into_iter().map(|id| async move {
            let mut c = redis::cmd("GET");
            c.arg(self.key(&format!("node:{id}")));
            let v: Option<String> = self.query(c).await?;
            Ok::<_, StoreError>((id, v))
        });
        let mut live = BTreeMap::new();
        let mut dead = Vec::new();
        for r in join_all(reads).await {
            match r? {
                (id, Some(info)) => {
                    live.insert(id, info);
                }
                (id, None) => dead.push(id),
            }
        }
        if !dead.is_empty() {
            let mut rem = redis::cmd("SREM");
            rem.arg(self.key("nodes")).arg(&dead);
            self.query::<()>(rem).await?;
        }
        Ok(live)
    }

    /// Lists `zones` as worth owning.
    pub async fn add_zones(&self, zones: &[ZoneId]) -> Result<(), StoreError> {
        if zones.is_empty() {
            return Ok(());
        }
        let mut add = redis::cmd("SADD");
        add.arg(self.key("zones"))
            .arg(zones.iter().map(ZoneId::to_string).collect::<Vec<_>>());
        self.query(add).await
    }

    /// The zones worth owning (a member that is not a zone is skipped and logged).
    pub async fn zones(&self) -> Result<BTreeSet<ZoneId>, StoreError> {
        let mut members = redis::cmd("SMEMBERS");
        members.arg(self.key("zones"));
        let raw: Vec<String> = self.query(members).await?;
        Ok(raw
            .iter()
            .filter_map(|s| {
                ZoneId::parse(s)
                    .map_err(|e| tracing::warn!("{}zones: {e}", self.prefix))
                    .ok()
            })
            .collect())
    }
}

#[cfg(test)]
#[path = "leases_tests.rs"]
mod tests;
