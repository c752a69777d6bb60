//! The snapshot recovery starts from: live orders, riders, merchants, positions,
//! escalations, tokens, tracking-app devices and accounts (docs/architecture.md,
//! "Recovery").
//!
//! At city scale (500k riders) this is millions of fields, so it is read
//! - on a thread of its own, with a runtime and connection of its own: decoding Redis's
//!   answers and the JSON records is most of the engine's share of the work, and this way
//!   it runs beside the engine rebuilding actors instead of before it;
//! - in parts ([`SnapshotPart`]): tokens and devices (`HSCAN` pages) from the start, the head
//!   (orders, merchants, escalations, accounts, the rider ids), then riders (each chunk
//!   one `MGET` of records and one `HMGET` of their positions), each as it comes, several requests in
//!   flight so Redis always has the next one while the last answer is decoded, and no
//!   single answer so large that it blocks Redis or outlasts `op_timeout`.
//!
//! Every read is idempotent and recovery can only wait for Redis, so a failed request is
//! retried with backoff until Redis answers; a record that does not decode is skipped.

use super::config::RedisConfig;
use super::conn::StoreConn;
use super::keys::Keys;
use super::positions::parse_position;
use super::records::{decode, MerchantRecord};
use super::zones::{live_order_reads, live_records};
use super::RedisStore;
use crate::domain::escalation::Escalation;
use crate::domain::rider::RiderView;
use crate::domain::zone::ZoneId;
use crate::store::{
    AccountRecord, OrderRecord, RiderRecord, Snapshot, SnapshotHead, SnapshotPart, StoreError,
};
use futures_util::stream::{self, StreamExt};
use redis::{Cmd, FromRedisValue, Pipeline};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Records per read: one `MGET`, or one pipeline of `HMGET`s.
const CHUNK: usize = 1000;
/// Reads of one part in flight at once.
const IN_FLIGHT: usize = 4;
/// Fields asked for per `HSCAN` page.
const SCAN_COUNT: usize = 5000;
/// Parts decoded ahead of the engine at most.
const PARTS_AHEAD: usize = 64;

impl RedisStore {
    /// Reads the snapshot on a thread of its own and hands it over in parts: tokens from
    /// the start, the head, then riders; `Done` last. Waits (retrying) while Redis does
    /// not answer.
    pub fn stream_snapshot(&self) -> mpsc::Receiver<SnapshotPart> {
        let (tx, rx) = mpsc::channel(PARTS_AHEAD);
        let cfg = self.cfg.clone();
        let keys = self.keys.clone();
        std::thread::Builder::new()
            .name("snapshot-reader".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the snapshot reader's runtime starts");
                rt.block_on(read_parts(cfg, keys, tx));
            })
            .expect("the snapshot reader's thread starts");
        rx
    }

    /// The whole snapshot at once (the parts, gathered).
    pub(super) async fn read_snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut rx = self.stream_snapshot();
        let mut snap = Snapshot::default();
        while let Some(part) = rx.recv().await {
            match part {
                SnapshotPart::Head(h) => {
                    snap.orders = h.orders;
                    snap.merchants = h.merchants;
                    snap.escalations = h.escalations;
                    snap.accounts = h.accounts;
                }
                SnapshotPart::Riders(rs) => {
                    for (view, pos) in rs {
                        if let Some(p) = pos {
                            snap.positions.insert(view.rider_id.clone(), p);
                        }
                        snap.riders.push(view);
                    }
                }
                SnapshotPart::Tokens(t) => snap.tokens.extend(t),
                SnapshotPart::Devices(d) => snap.devices.extend(d),
                SnapshotPart::Done => return Ok(snap),
            }
        }
        Err(super::unavailable(
            "the snapshot reader stopped before the end",
        ))
    }
}

/// Reads every part and sends it; stops early if the receiver is gone.
async fn read_parts(cfg: Arc<RedisConfig>, keys: Arc<Keys>, tx: mpsc::Sender<SnapshotPart>) {
    let r = Reader::connect(cfg, keys).await;
    // Tokens and devices depend on nothing else: read from the start, beside everything.
    tokio::join!(
        r.hash_pages("tokens", &tx, SnapshotPart::Tokens),
        r.hash_pages("devices", &tx, SnapshotPart::Devices),
        head_then_riders(&r, &tx)
    );
    let _ = tx.send(SnapshotPart::Done).await;
}

/// The head, then the riders (they need the head's orders first).
async fn head_then_riders(r: &Reader, tx: &mpsc::Sender<SnapshotPart>) {
    let (orders, merchants, escalations, accounts, rider_ids) = tokio::join!(
        r.live_orders(),
        r.set_records::<MerchantRecord>("merchants", "merchant:"),
        r.hash_records::<Escalation>("escalations"),
        r.hash_records::<AccountRecord>("accounts"),
        r.members("riders"),
    );
    let mut escalations = escalations;
    escalations.sort_by(|a, b| {
        a.opened_ms
            .cmp(&b.opened_ms)
            .then_with(|| a.escalation_id.cmp(&b.escalation_id))
    });
    let head = SnapshotHead {
        orders,
        merchants: merchants
            .into_iter()
            .map(|m| (m.merchant, m.items))
            .collect(),
        escalations,
        accounts,
        riders: rider_ids.len(),
    };
    if tx.send(SnapshotPart::Head(head)).await.is_err() {
        return;
    }
    stream::iter(in_chunks(rider_ids))
        .map(|ids| r.riders(ids))
        .buffer_unordered(IN_FLIGHT)
        .for_each(|chunk| async move {
            let _ = tx.send(SnapshotPart::Riders(chunk)).await;
        })
        .await;
}

/// The reading side: its own connection (it reconnects by itself) and the keyspace.
struct Reader {
    conn: StoreConn,
    keys: Arc<Keys>,
}

impl Reader {
    async fn connect(cfg: Arc<RedisConfig>, keys: Arc<Keys>) -> Reader {
        let mut delay = Duration::from_millis(100);
        loop {
            match StoreConn::open(&cfg) {
                Ok(conn) => return Reader { conn, keys },
                Err(e) => {
                    tracing::warn!(%e, "recovery: redis not reachable yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    fn key(&self, rest: &str) -> String {
        self.keys.plain(rest)
    }

    /// One command, retried with backoff until Redis answers.
    async fn cmd<T: FromRedisValue>(&self, c: &Cmd) -> T {
        let mut delay = Duration::from_millis(100);
        loop {
            let mut conn = self.conn.clone();
            match c.query_async(&mut conn).await {
                Ok(v) => return v,
                Err(e) => self.backoff(&e, &mut delay).await,
            }
        }
    }

    /// One pipeline, retried with backoff until Redis answers.
    async fn pipe<T: FromRedisValue>(&self, p: &Pipeline) -> T {
        let mut delay = Duration::from_millis(100);
        loop {
            let mut conn = self.conn.clone();
            match p.query_async(&mut conn).await {
                Ok(v) => return v,
                Err(e) => self.backoff(&e, &mut delay).await,
            }
        }
    }

    async fn backoff(&self, e: &redis::RedisError, delay: &mut Duration) {
        tracing::warn!(%e, "recovery: a read failed; retrying");
        tokio::time::sleep(*delay).await;
        *delay = (*delay * 2).min(Duration::from_secs(2));
    }

    async fn members(&self, set: &str) -> Vec<String> {
        let mut c = redis::cmd("SMEMBERS");
        c.arg(self.key(set));
        self.cmd(&c).await
    }

    /// Orders not in a final state, each with the stored version as its compare-and-set
    /// base: those without a zone, then those of every zone in `zones`.
    async fn live_orders(&self) -> Vec<OrderRecord> {
        let mut c = redis::cmd("SMEMBERS");
        c.arg(self.keys.zones());
        let zones: Vec<String> = self.cmd(&c).await;
        let mut out = self.live_orders_of(None).await;
        for z in zones {
            match ZoneId::parse(&z) {
                Ok(z) => out.extend(self.live_orders_of(Some(z)).await),
                Err(e) => tracing::error!(error = %e, "unreadable zone skipped"),
            }
        }
        out
    }

    /// The live orders of one zone (or of none).
    async fn live_orders_of(&self, zone: Option<ZoneId>) -> Vec<OrderRecord> {
        let mut c = redis::cmd("SMEMBERS");
        c.arg(self.keys.scoped(zone, "orders:live"));
        let ids: Vec<String> = self.cmd(&c).await;
        let chunks: Vec<Vec<OrderRecord>> = stream::iter(in_chunks(ids))
            .map(|chunk| async move {
                let pipe = live_order_reads(&self.keys, zone, &chunk);
                live_records(self.pipe(&pipe).await)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        chunks.into_iter().flatten().collect()
    }

    /// Every record listed in the set `set`, each a JSON string at `{prefix}{id}`.
    async fn set_records<T: for<'de> Deserialize<'de>>(&self, set: &str, prefix: &str) -> Vec<T> {
        let ids = self.members(set).await;
        let chunks: Vec<Vec<T>> = stream::iter(in_chunks(ids))
            .map(|chunk| async move {
                let mut c = redis::cmd("MGET");
                for id in &chunk {
                    c.arg(self.key(&format!("{prefix}{id}")));
                }
                let rows: Vec<Option<String>> = self.cmd(&c).await;
                rows.iter()
                    .flatten()
                    .filter_map(|s| decode::<T>(set, s))
                    .collect::<Vec<T>>()
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        chunks.into_iter().flatten().collect()
    }

    /// The riders `ids` with their latest positions (`positions` is written more often
    /// than the rider records): one pipeline.
    async fn riders(&self, ids: Vec<String>) -> Vec<RiderRecord> {
        let mut records = redis::cmd("MGET");
        let mut positions = redis::cmd("HMGET");
        positions.arg(self.key("positions"));
        for id in &ids {
            records.arg(self.key(&format!("rider:{id}")));
            positions.arg(id);
        }
        let mut pipe = redis::pipe();
        pipe.add_command(records).add_command(positions);
        let (records, positions): (Vec<Option<String>>, Vec<Option<String>>) =
            self.pipe(&pipe).await;
        records
            .into_iter()
            .zip(positions)
            .filter_map(|(rec, pos)| {
                let view = decode::<RiderView>("rider", &rec?)?;
                Some((view, pos.as_deref().and_then(parse_position)))
            })
            .collect()
    }

    /// A hash of strings (`tokens`, `devices`) page by page (`HSCAN`), each page sent as
    /// `part` as it comes. A field may come twice if the hash is rehashed meanwhile (the
    /// receiver's map keeps one).
    async fn hash_pages(
        &self,
        name: &str,
        tx: &mpsc::Sender<SnapshotPart>,
        part: fn(Vec<(String, String)>) -> SnapshotPart,
    ) {
        let key = self.key(name);
        let mut cursor = String::from("0");
        loop {
            let mut c = redis::cmd("HSCAN");
            c.arg(&key).arg(&cursor).arg("COUNT").arg(SCAN_COUNT);
            let (next, page): (String, Vec<(String, String)>) = self.cmd(&c).await;
            if !page.is_empty() && tx.send(part(page)).await.is_err() {
                return;
            }
            if next == "0" {
                return;
            }
            cursor = next;
        }
    }

    /// The decoded values of a small hash (`escalations`, `accounts`), read whole.
    async fn hash_records<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Vec<T> {
        let mut c = redis::cmd("HVALS");
        c.arg(self.key(name));
        let values: Vec<String> = self.cmd(&c).await;
        values.iter().filter_map(|s| decode(name, s)).collect()
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
