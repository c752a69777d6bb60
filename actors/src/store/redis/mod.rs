//! The durable store on Redis (docs/architecture.md, "Store"; docs/operations.md).
//! This file holds the store handle (opening, queueing a write, reading); each other file
//! holds one part named below.
//!
//! - **Write path** (`writer`). Every write is a handful of Redis commands handed to one
//!   writer task over a bounded channel. The writer takes whatever is queued (up to
//!   `max_batch`, optionally lingering a moment for more) and sends it as one pipeline:
//!   group commit, so a burst of requests costs one round trip, not one each. Each write
//!   carries a oneshot the writer answers once Redis has answered the pipeline; callers
//!   that acknowledge something (REST replies, rider answers) await it.
//! - **Compare-and-set** (`order_cas`). An order is written by a Lua script that refuses
//!   the write when another writer (another engine process) has moved the order past the
//!   version this actor took it over at, so two nodes can never both move one order.
//! - **Outage.** A pipeline that fails is retried with backoff; if Redis stays away the
//!   waiting callers get `Unavailable` (503), [`Store::writable`](super::Store::writable)
//!   turns false so the engine refuses new changes up front, and writes whose change the
//!   engine already holds in memory are kept (latest per record) and flushed when Redis
//!   answers again. Positions are kept in memory, latest per rider, and flushed per tick
//!   (`positions`); `health` follows whether Redis answers.
//! - **Encoding** (`records`). Records are JSON strings (serde_json): a storage encoding,
//!   readable with `redis-cli`; the engine itself speaks no JSON.
//! - **Idempotency keys** (`idempotency`) are reserved with a pending marker before their
//!   request runs, then hold its response; one Lua script per step, straight to Redis.
//! - **Recovery** reads a snapshot (`snapshot`); every engine event also goes to a Redis
//!   stream (`events`). Settings are in `config`.
//! - **Webhooks** (`webhooks`): subscriptions, pending deliveries and dead letters, so
//!   deliveries survive a restart.
//! - **Zone leases** (`leases`): leases with fencing numbers, node membership and the
//!   zones registry (docs/cluster.md), over the store's connection or any other
//!   (a Redis Cluster's); the keeper in `crate::cluster` drives them.
//! - **Zone tails** (`zone_tail`): another node's read of a zone's event stream, after
//!   a stream id (every node's dashboard shows the whole city, docs/cluster.md).
//! - **Bulk import** (`bulk`) writes many records at once in the same format (load tools
//!   seed a store with it; the engine does not use it).

mod bulk;
mod cluster_client;
mod config;
mod conn;
mod events;
mod health;
mod idempotency;
mod keys;
mod leases;
mod order_cas;
mod positions;
mod records;
mod riders;
mod shares;
mod snapshot;
mod tokens;
mod webhooks;
mod writer;
mod zone_tail;
mod zones;

pub use cluster_client::ClusterHandle;
pub use config::RedisConfig;
pub use conn::StoreConn;
pub use leases::Leases;
pub use zone_tail::{ZoneEntry, STREAM_START};

use self::health::{pinger, Status};
use self::keys::Keys;
use self::positions::{position_flusher, Pending, Positions};
use self::writer::{writer, Op};
use super::StoreError;
use crate::domain::zone::ZoneId;
use parking_lot::Mutex;
use rand::RngCore;
use redis::{Cmd, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

// The tests reach the store through `super::*`: the records and the trait they call.
#[cfg(test)]
use super::{OrderRecord, Store};

/// The durable store. Cheap to clone (shares one connection and writer).
#[derive(Clone)]
pub struct RedisStore {
    cfg: Arc<RedisConfig>,
    conn: StoreConn,
    keys: Arc<Keys>,
    tx: mpsc::Sender<Op>,
    status: Arc<Status>,
    positions: Arc<Positions>,
    /// This process's writer id for order compare-and-set.
    node: Arc<str>,
    /// The zones this store may write orders of, each with the fencing number it took the
    /// zone with (`zones`).
    held: Arc<Mutex<HashMap<ZoneId, u64>>>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl RedisStore {
    /// Creates the store and its background tasks (writer, position flusher, health
    /// pinger). Does not wait for Redis: it may be down at start;
    /// [`Store::healthy`](super::Store::healthy) says when it answers. Must be called
    /// inside a tokio runtime.
    pub fn open(cfg: RedisConfig) -> Result<RedisStore, StoreError> {
        let conn = StoreConn::open(&cfg).map_err(unavailable)?;
        let cfg_node = cfg.node_id.clone();
        let (tx, rx) = mpsc::channel(65_536);
        let store = RedisStore {
            keys: Arc::new(Keys::new(&cfg.prefix, conn.is_cluster())),
            cfg: Arc::new(cfg),
            conn,
            tx,
            status: Arc::new(Status::new()),
            positions: Arc::new(Mutex::new(Pending::default())),
            node: if cfg_node.is_empty() {
                random_hex(8).into()
            } else {
                cfg_node.into()
            },
            held: Arc::default(),
        };
        tokio::spawn(writer(
            rx,
            store.conn.clone(),
            store.status.clone(),
            store.cfg.clone(),
        ));
        tokio::spawn(pinger(store.conn.clone(), Arc::downgrade(&store.status)));
        tokio::spawn(position_flusher(store.clone_weak()));
        Ok(store)
    }

    pub fn config(&self) -> &RedisConfig {
        &self.cfg
    }

    /// The store's connection (other users of it: the mesh's writes).
    pub fn conn(&self) -> StoreConn {
        self.conn.clone()
    }

    /// A connection of its own to the same Redis (a reader that blocks: the mesh's inbox).
    pub fn fresh_conn(&self) -> Result<StoreConn, StoreError> {
        StoreConn::open(&self.cfg).map_err(unavailable)
    }

    /// This process's writer id (order compare-and-set).
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// Recovery finished: the engine may take changes (and readyz may say ready).
    pub fn mark_recovered(&self) {
        self.status.recovered.store(true, Ordering::SeqCst);
    }

    /// Is Redis answering right now (regardless of recovery)?
    pub fn reachable(&self) -> bool {
        self.status.healthy.load(Ordering::SeqCst)
    }

    /// Writes kept while Redis was away, not yet flushed.
    pub fn pending_writes(&self) -> u64 {
        self.status.pending.load(Ordering::SeqCst)
    }

    /// Every one-key record's key goes through here, so the whole store lives under
    /// `prefix`; zone-scoped keys go through [`Keys::scoped`].
    fn key(&self, rest: &str) -> String {
        self.keys.plain(rest)
    }

    /// A key of `zone` (`lease`, `fence`, `orders:live`, …) as docs/cluster.md lays them
    /// out: `{prefix}{z:<cell>}:<rest>`.
    pub fn zone_key(&self, zone: ZoneId, rest: &str) -> String {
        self.keys.scoped(Some(zone), rest)
    }

    /// Does this store speak to a Redis Cluster (several seed URLs)?
    pub fn is_cluster(&self) -> bool {
        self.conn.is_cluster()
    }

    /// Queues one write of a `record` (the kind, a metric label) and waits until Redis has
    /// it (or the writer gave up on it).
    async fn submit(
        &self,
        record: &'static str,
        cmds: Vec<Cmd>,
        retain: bool,
        key: Option<String>,
    ) -> Result<Vec<Value>, StoreError> {
        let (tx, rx) = oneshot::channel();
        let op = Op {
            cmds,
            reply: Some(tx),
            retain,
            key,
            record,
            queued: Instant::now(),
        };
        self.tx
            .send(op)
            .await
            .map_err(|_| unavailable("writer stopped"))?;
        rx.await.map_err(|_| unavailable("writer stopped"))?
    }

    /// Reads go straight to the connection, not through the writer: a read must not wait
    /// behind a batch of writes.
    async fn read<T: redis::FromRedisValue>(&self, cmd: Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.cfg.op_timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable("timed out")),
        }
    }

    /// Deletes every key under this store's prefix (tests). On a cluster every master is
    /// scanned: `SCAN` sees only the keys of the server it runs on.
    pub async fn delete_all(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}*", self.cfg.prefix);
        let mut n = 0;
        for master in conn.masters().await.map_err(unavailable)? {
            let mut cursor: u64 = 0;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000);
                let page = conn.on_master(&master, &scan).await.map_err(unavailable)?;
                let (next, keys): (u64, Vec<String>) =
                    redis::from_redis_value(page).map_err(unavailable)?;
                if !keys.is_empty() {
                    n += keys.len();
                    // The cluster client splits a multi-key DEL by slot.
                    redis::cmd("DEL")
                        .arg(&keys)
                        .query_async::<()>(&mut conn)
                        .await
                        .map_err(unavailable)?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
#[path = "../redis_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "../redis_zone_tests.rs"]
mod zone_tests;

#[cfg(test)]
#[path = "../redis_cluster_tests.rs"]
mod cluster_tests;
