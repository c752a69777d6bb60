//! The durable store on Redis (docs/architecture.md, "Store"; docs/operations.md).
//!
//! - **Write path.** Every write is a handful of Redis commands handed to one writer task
//!   over a bounded channel. The writer takes whatever is queued (up to `max_batch`,
//!   optionally lingering a moment for more) and sends it as one pipeline: group commit,
//!   so a burst of requests costs one round trip, not one each. Each write carries a
//!   oneshot the writer answers once Redis has answered the pipeline; callers that
//!   acknowledge something (REST replies, rider answers) await it.
//! - **Compare-and-set.** An order is written by a Lua script that refuses the write when
//!   another writer (another engine process) has moved the order past the version this
//!   actor took it over at, so two nodes can never both move one order.
//! - **Outage.** A pipeline that fails is retried with backoff; if Redis stays away the
//!   waiting callers get `Unavailable` (503), [`Store::writable`] turns false so the engine
//!   refuses new changes up front, and writes whose change the engine already holds in
//!   memory are kept (latest per record) and flushed when Redis answers again. Positions
//!   are kept in memory, latest per rider, and flushed per tick.
//! - **Encoding.** Records are JSON strings (serde_json): a storage encoding, readable
//!   with `redis-cli`; the engine itself speaks no JSON.

use super::{AccountRecord, OrderRecord, Snapshot, Store, StoreError, StoredResponse};
use crate::domain::escalation::Escalation;
use crate::domain::merchant::{Item, Merchant};
use crate::domain::order::Order;
use crate::domain::rider::RiderView;
use crate::domain::{EscalationId, GeoPoint, OrderId, RiderId};
use crate::events::Event;
use crate::metric_names;
use async_trait::async_trait;
use parking_lot::Mutex;
use rand::RngCore;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Value};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};

#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: String,
    /// Prefix of every key, so tests and several deployments can share one server.
    pub prefix: String,
    /// Most writes in one pipeline. 1 turns group commit off (one round trip per write).
    pub max_batch: usize,
    /// After the first write of a batch, wait this long for others to join (0: take only
    /// what is already queued; batches still form while a pipeline is in flight).
    pub linger: Duration,
    /// Rider positions are flushed this often, latest per rider.
    pub position_flush: Duration,
    /// Approximate length the event stream is trimmed to (`XADD MAXLEN ~`).
    pub event_stream_maxlen: usize,
    /// One Redis round trip longer than this counts as a failure.
    pub op_timeout: Duration,
    /// Retries of a failed pipeline (with backoff) before its callers get `Unavailable`.
    pub retries: u32,
    /// Writes kept for later while Redis is away; beyond, the oldest are dropped (logged).
    pub max_pending: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379/0".into(),
            prefix: "dispatch:".into(),
            max_batch: 512,
            linger: Duration::ZERO,
            position_flush: Duration::from_millis(100),
            event_stream_maxlen: 100_000,
            op_timeout: Duration::from_secs(2),
            retries: 3,
            max_pending: 200_000,
        }
    }
}

/// Writes an order if no other writer moved it past the version this actor took it over
/// at. KEYS: order hash, live-order set, timers zset. ARGV: order id, version, base
/// version, writer, status, final (0/1), record JSON, timer count, then (name, due_ms)
/// pairs, then the write's sequence number last. Returns 1 written, 2 skipped (this same
/// writer already stored this write or a newer one: (version, seq) not greater), 0
/// conflict.
const CAS_ORDER_LUA: &str = r#"
local cur = redis.call('HMGET', KEYS[1], 'version', 'writer', 'timers', 'seq')
local v = tonumber(ARGV[2])
local seq = tonumber(ARGV[#ARGV])
if cur[1] then
  local sv = tonumber(cur[1])
  if cur[2] == ARGV[4] then
    local sseq = tonumber(cur[4]) or 0
    if sv > v or (sv == v and sseq >= seq) then return 2 end
  elseif sv ~= tonumber(ARGV[3]) then
    return 0
  end
end
if cur[3] and cur[3] ~= '' then
  for m in string.gmatch(cur[3], '[^ ]+') do redis.call('ZREM', KEYS[3], m) end
end
local members = {}
if ARGV[6] == '1' then
  redis.call('SREM', KEYS[2], ARGV[1])
else
  redis.call('SADD', KEYS[2], ARGV[1])
  local n = tonumber(ARGV[8])
  for i = 1, n do
    local m = ARGV[1] .. '|' .. ARGV[7 + 2 * i]
    redis.call('ZADD', KEYS[3], ARGV[8 + 2 * i], m)
    members[#members + 1] = m
  end
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'writer', ARGV[4], 'status', ARGV[5],
  'data', ARGV[7], 'timers', table.concat(members, ' '), 'seq', ARGV[#ARGV])
return 1
"#;

type Reply = oneshot::Sender<Result<Vec<Value>, StoreError>>;

/// One write: its commands go into one pipeline together.
struct Op {
    cmds: Vec<Cmd>,
    reply: Option<Reply>,
    /// The engine already holds this change in memory: if Redis is away, keep the write
    /// (latest per `key`) and flush it when Redis is back.
    retain: bool,
    /// Record key, for "latest wins" among kept writes (None: always kept, e.g. events).
    key: Option<String>,
    queued: Instant,
}

struct Status {
    healthy: AtomicBool,
    recovered: AtomicBool,
    pending: AtomicU64,
}

impl Status {
    fn set_healthy(&self, ok: bool) {
        let was = self.healthy.swap(ok, Ordering::SeqCst);
        if was != ok {
            if ok {
                tracing::info!("redis reachable");
            } else {
                tracing::warn!("redis unreachable: state changes answer 503 until it is back");
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
struct MerchantRecord {
    merchant: Merchant,
    items: Vec<Item>,
}

/// The durable store. Cheap to clone (shares one connection and writer).
#[derive(Clone)]
pub struct RedisStore {
    cfg: Arc<RedisConfig>,
    conn: ConnectionManager,
    tx: mpsc::Sender<Op>,
    status: Arc<Status>,
    positions: Arc<Mutex<HashMap<RiderId, (GeoPoint, u64)>>>,
    /// This process's writer id for order compare-and-set.
    node: Arc<str>,
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
    /// pinger). Does not wait for Redis: it may be down at start; [`Store::healthy`]
    /// says when it answers. Must be called inside a tokio runtime.
    pub fn open(cfg: RedisConfig) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(cfg.url.as_str()).map_err(unavailable)?;
        let mcfg = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(cfg.op_timeout));
        let conn = ConnectionManager::new_lazy_with_config(client, mcfg).map_err(unavailable)?;
        let (tx, rx) = mpsc::channel(65_536);
        let store = RedisStore {
            cfg: Arc::new(cfg),
            conn,
            tx,
            status: Arc::new(Status {
                healthy: AtomicBool::new(false),
                recovered: AtomicBool::new(false),
                pending: AtomicU64::new(0),
            }),
            positions: Arc::new(Mutex::new(HashMap::new())),
            node: random_hex(8).into(),
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

    fn clone_weak(&self) -> WeakStore {
        WeakStore {
            cfg: self.cfg.clone(),
            conn: self.conn.clone(),
            status: Arc::downgrade(&self.status),
            positions: Arc::downgrade(&self.positions),
        }
    }

    pub fn config(&self) -> &RedisConfig {
        &self.cfg
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

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.cfg.prefix)
    }

    async fn submit(
        &self,
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
            queued: Instant::now(),
        };
        self.tx
            .send(op)
            .await
            .map_err(|_| unavailable("writer stopped"))?;
        rx.await.map_err(|_| unavailable("writer stopped"))?
    }

    async fn read<T: redis::FromRedisValue>(&self, cmd: Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.cfg.op_timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable("timed out")),
        }
    }

    fn order_cmd(&self, rec: &OrderRecord) -> Result<Cmd, StoreError> {
        let o = &rec.order;
        let data = serde_json::to_string(rec).map_err(|e| unavailable(format!("encode: {e}")))?;
        let mut c = redis::cmd("EVALSHA");
        c.arg(cas_sha())
            .arg(3)
            .arg(self.key(&format!("order:{}", o.order_id)))
            .arg(self.key("orders:live"))
            .arg(self.key("timers"))
            .arg(o.order_id.as_str())
            .arg(o.version)
            .arg(rec.base_version)
            .arg(&*self.node)
            .arg(o.status.as_str())
            .arg(if o.status.is_final() { "1" } else { "0" })
            .arg(data);
        let mut timers: Vec<(String, u64)> = rec
            .timers
            .iter()
            .map(|t| {
                let name = serde_json::to_value(t.timer)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                (name, t.due_ms)
            })
            .collect();
        for o in &rec.offers.open {
            timers.push((
                format!("offer_ttl:{}", o.offer.offer_id),
                o.offer.expires_at_ms,
            ));
        }
        c.arg(timers.len());
        for (name, due) in timers {
            c.arg(name).arg(due);
        }
        c.arg(rec.seq);
        Ok(c)
    }

    /// Appends every engine event to the `events` stream (bounded, `XADD MAXLEN ~`), in
    /// batches. Outside consumers read it with consumer groups (docs/protocol.md).
    pub fn spawn_event_log(&self, mut rx: broadcast::Receiver<Event>) {
        let tx = self.tx.clone();
        let stream = self.key("events");
        let maxlen = self.cfg.event_stream_maxlen;
        tokio::spawn(async move {
            loop {
                let first = match rx.recv().await {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        metrics::counter!(metric_names::STORE_EVENTS_DROPPED_TOTAL).increment(n);
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let mut batch = vec![first];
                while batch.len() < 512 {
                    match rx.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
                let cmds: Vec<Cmd> = batch
                    .iter()
                    .filter_map(|e| event_cmd(&stream, maxlen, e))
                    .collect();
                let op = Op {
                    cmds,
                    reply: None,
                    retain: true,
                    key: None,
                    queued: Instant::now(),
                };
                if tx.try_send(op).is_err() {
                    metrics::counter!(metric_names::STORE_EVENTS_DROPPED_TOTAL)
                        .increment(batch.len() as u64);
                }
            }
        });
    }

    /// Deletes every key under this store's prefix (tests).
    pub async fn delete_all(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}*", self.cfg.prefix);
        let mut cursor: u64 = 0;
        let mut n = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if !keys.is_empty() {
                n += keys.len();
                redis::cmd("DEL")
                    .arg(&keys)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(unavailable)?;
            }
            if next == 0 {
                return Ok(n);
            }
            cursor = next;
        }
    }
}

fn cas_sha() -> &'static str {
    use std::sync::OnceLock;
    static SHA: OnceLock<String> = OnceLock::new();
    SHA.get_or_init(|| redis::Script::new(CAS_ORDER_LUA).get_hash().to_string())
}

fn event_cmd(stream: &str, maxlen: usize, e: &Event) -> Option<Cmd> {
    let v = serde_json::to_value(e).ok()?;
    let kind = v.get("type")?.as_str()?.to_string();
    let mut c = redis::cmd("XADD");
    c.arg(stream)
        .arg("MAXLEN")
        .arg("~")
        .arg(maxlen)
        .arg("*")
        .arg("type")
        .arg(kind)
        .arg("data")
        .arg(v.to_string());
    Some(c)
}

fn encode_response(r: &StoredResponse) -> String {
    format!("{}\n{}\n{}", r.body_hash, r.status, r.body)
}

fn decode_response(s: &str) -> Option<StoredResponse> {
    let mut it = s.splitn(3, '\n');
    Some(StoredResponse {
        body_hash: it.next()?.parse().ok()?,
        status: it.next()?.parse().ok()?,
        body: it.next()?.to_string(),
    })
}

fn value_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn is_outage(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_unrecoverable_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
}

/// The single writer: group commit, retries with backoff, kept writes during an outage.
async fn writer(
    mut rx: mpsc::Receiver<Op>,
    mut conn: ConnectionManager,
    status: Arc<Status>,
    cfg: Arc<RedisConfig>,
) {
    let mut kept: Vec<Op> = Vec::new();
    let mut need_script = true;
    loop {
        let first = if kept.is_empty() {
            match rx.recv().await {
                Some(op) => Some(op),
                None => return,
            }
        } else {
            match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
                Ok(Some(op)) => Some(op),
                Ok(None) => return,
                Err(_) => None,
            }
        };
        let mut batch: Vec<Op> = first.into_iter().collect();
        if !batch.is_empty() && !cfg.linger.is_zero() && cfg.max_batch > 1 {
            tokio::time::sleep(cfg.linger).await;
        }
        while batch.len() < cfg.max_batch.max(1) {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if !kept.is_empty() {
            if !status.healthy.load(Ordering::SeqCst) && batch.is_empty() {
                continue;
            }
            // Kept writes go first; one superseded by a newer write of the same record goes.
            let newer: HashSet<String> = batch.iter().filter_map(|o| o.key.clone()).collect();
            let mut old = std::mem::take(&mut kept);
            old.retain(|o| o.key.as_ref().is_none_or(|k| !newer.contains(k)));
            old.append(&mut batch);
            batch = old;
        }
        if batch.is_empty() {
            continue;
        }
        metrics::histogram!(metric_names::STORE_BATCH_WRITES).record(batch.len() as f64);
        let retries = if status.healthy.load(Ordering::SeqCst) {
            cfg.retries
        } else {
            0
        };
        let mut attempt = 0;
        let result = loop {
            let r = exec(&mut conn, &batch, need_script, cfg.op_timeout).await;
            match r {
                Ok(v) => break Ok(v),
                Err(e) => {
                    need_script = true;
                    if attempt >= retries || !e.1 {
                        break Err(e);
                    }
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50u64 << attempt)).await;
                }
            }
        };
        match result {
            Ok(values) => {
                need_script = false;
                status.set_healthy(true);
                let mut values = values.into_iter();
                for mut op in batch {
                    let mine: Vec<Value> = values.by_ref().take(op.cmds.len()).collect();
                    metrics::histogram!(metric_names::STORE_WRITE_SECONDS)
                        .record(op.queued.elapsed().as_secs_f64());
                    if let Some(r) = op.reply.take() {
                        let _ = r.send(Ok(mine));
                    }
                }
            }
            Err((msg, outage)) => {
                metrics::counter!(metric_names::STORE_ERRORS_TOTAL).increment(1);
                if outage {
                    status.set_healthy(false);
                } else {
                    tracing::error!(error = %msg, "redis refused a pipeline");
                }
                for mut op in batch {
                    if let Some(r) = op.reply.take() {
                        let _ = r.send(Err(unavailable(&msg)));
                    }
                    if outage && op.retain {
                        if let Some(k) = &op.key {
                            kept.retain(|o| o.key.as_ref() != Some(k));
                        }
                        kept.push(op);
                    }
                }
                if kept.len() > cfg.max_pending {
                    let drop = kept.len() - cfg.max_pending;
                    tracing::error!(
                        dropped = drop,
                        "redis away too long: oldest kept writes dropped"
                    );
                    kept.drain(..drop);
                }
            }
        }
        status.pending.store(kept.len() as u64, Ordering::SeqCst);
        metrics::gauge!(metric_names::STORE_PENDING_WRITES).set(kept.len() as f64);
    }
}

/// Runs one pipeline. Err carries the message and whether it looks like an outage.
async fn exec(
    conn: &mut ConnectionManager,
    batch: &[Op],
    load_script: bool,
    timeout: Duration,
) -> Result<Vec<Value>, (String, bool)> {
    let mut pipe = redis::pipe();
    if load_script {
        pipe.cmd("SCRIPT").arg("LOAD").arg(CAS_ORDER_LUA).ignore();
    }
    for op in batch {
        for c in &op.cmds {
            pipe.add_command(c.clone());
        }
    }
    match tokio::time::timeout(timeout, pipe.query_async::<Vec<Value>>(conn)).await {
        Ok(Ok(v)) => Ok(v),
        // NOSCRIPT: Redis restarted and lost its script cache; the retry loads it again.
        Ok(Err(e)) => Err((
            e.to_string(),
            is_outage(&e) || e.to_string().contains("NOSCRIPT"),
        )),
        Err(_) => Err(("timed out".into(), true)),
    }
}

/// PINGs Redis a few times a second: `healthy` follows the answers.
async fn pinger(mut conn: ConnectionManager, status: std::sync::Weak<Status>) {
    loop {
        let ok = matches!(
            tokio::time::timeout(
                Duration::from_millis(500),
                redis::cmd("PING").query_async::<String>(&mut conn)
            )
            .await,
            Ok(Ok(_))
        );
        let Some(st) = status.upgrade() else { return };
        st.set_healthy(ok);
        drop(st);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

struct WeakStore {
    cfg: Arc<RedisConfig>,
    conn: ConnectionManager,
    status: std::sync::Weak<Status>,
    positions: std::sync::Weak<Mutex<HashMap<RiderId, (GeoPoint, u64)>>>,
}

/// Every tick: the latest position of each rider that moved, as one `HSET` (exact, with
/// the fix time) and one `GEOADD` (for `GEOSEARCH` by ordinary Redis tools). Kept in
/// memory while Redis is away; the newest wins when it is back.
async fn position_flusher(w: WeakStore) {
    let hash = format!("{}positions", w.cfg.prefix);
    let geo = format!("{}geo", w.cfg.prefix);
    let mut conn = w.conn.clone();
    let mut tick = tokio::time::interval(w.cfg.position_flush);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (Some(status), Some(positions)) = (w.status.upgrade(), w.positions.upgrade()) else {
            return;
        };
        if !status.healthy.load(Ordering::SeqCst) {
            continue;
        }
        let batch: HashMap<RiderId, (GeoPoint, u64)> = std::mem::take(&mut *positions.lock());
        if batch.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        for chunk in batch.iter().collect::<Vec<_>>().chunks(1000) {
            let mut h = redis::cmd("HSET");
            h.arg(&hash);
            let mut g = redis::cmd("GEOADD");
            g.arg(&geo);
            for (r, (p, ts)) in chunk {
                h.arg(r.as_str())
                    .arg(format!("{},{},{}", p.lat(), p.lon(), ts));
                // GEOADD refuses latitudes beyond ±85.05112878 (Web Mercator).
                if p.lat().abs() <= 85.05 {
                    g.arg(p.lon()).arg(p.lat()).arg(r.as_str());
                }
            }
            pipe.add_command(h).ignore();
            if g.args_iter().count() > 2 {
                pipe.add_command(g).ignore();
            }
        }
        let n = batch.len();
        let res = tokio::time::timeout(w.cfg.op_timeout, pipe.query_async::<()>(&mut conn)).await;
        if matches!(res, Ok(Ok(()))) {
            metrics::counter!(metric_names::STORE_POSITIONS_WRITTEN_TOTAL).increment(n as u64);
        } else {
            // Put them back unless a newer fix arrived meanwhile.
            let mut map = positions.lock();
            for (r, v) in batch {
                let newer = map.get(&r).is_some_and(|cur| cur.1 >= v.1);
                if !newer {
                    map.insert(r, v);
                }
            }
            status.set_healthy(false);
        }
    }
}

fn parse_position(s: &str) -> Option<(GeoPoint, u64)> {
    let mut it = s.split(',');
    let lat: f64 = it.next()?.parse().ok()?;
    let lon: f64 = it.next()?.parse().ok()?;
    let ts: u64 = it.next()?.parse().ok()?;
    Some((GeoPoint::new(lat, lon).ok()?, ts))
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, s: &str) -> Option<T> {
    match serde_json::from_str(s) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(what, error = %e, "unreadable record skipped");
            None
        }
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn save_order(&self, order: &Order) -> Result<(), StoreError> {
        self.save_order_record(&OrderRecord::bare(order.clone()))
            .await
    }

    async fn save_order_record(&self, rec: &OrderRecord) -> Result<(), StoreError> {
        let cmd = self.order_cmd(rec)?;
        // A brand-new order (base 0) is not in memory unless the write succeeds.
        let retain = rec.base_version > 0 || rec.order.version > 1;
        let key = Some(format!("order:{}", rec.order.order_id));
        let v = self.submit(vec![cmd], retain, key).await?;
        match v.first() {
            Some(Value::Int(0)) => Err(StoreError::Conflict(rec.order.order_id.to_string())),
            Some(Value::Int(_)) => Ok(()),
            other => Err(unavailable(format!("unexpected reply {other:?}"))),
        }
    }

    async fn load_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        Ok(self.load_order_record(id).await?.map(|r| r.order))
    }

    async fn load_order_record(&self, id: &OrderId) -> Result<Option<OrderRecord>, StoreError> {
        let mut c = redis::cmd("HGET");
        c.arg(self.key(&format!("order:{id}"))).arg("data");
        let s: Option<String> = self.read(c).await?;
        Ok(s.and_then(|s| decode::<OrderRecord>("order", &s)))
    }

    async fn save_rider(&self, rider: &RiderView) -> Result<(), StoreError> {
        let data = serde_json::to_string(rider).map_err(unavailable)?;
        let mut set = redis::cmd("SET");
        set.arg(self.key(&format!("rider:{}", rider.rider_id)))
            .arg(data);
        let mut add = redis::cmd("SADD");
        add.arg(self.key("riders")).arg(rider.rider_id.as_str());
        let key = Some(format!("rider:{}", rider.rider_id));
        self.submit(vec![set, add], true, key).await.map(|_| ())
    }

    async fn save_merchant(&self, merchant: &Merchant, items: &[Item]) -> Result<(), StoreError> {
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
        let key = Some(format!("merchant:{}", merchant.merchant_id));
        self.submit(vec![set, add], true, key).await.map(|_| ())
    }

    async fn save_escalation(&self, e: &Escalation) -> Result<(), StoreError> {
        let data = serde_json::to_string(e).map_err(unavailable)?;
        let mut c = redis::cmd("HSET");
        c.arg(self.key("escalations"))
            .arg(e.escalation_id.as_str())
            .arg(data);
        let key = Some(format!("escalation:{}", e.escalation_id));
        self.submit(vec![c], true, key).await.map(|_| ())
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
        let k = self.key(key);
        let mut set = redis::cmd("SET");
        set.arg(&k)
            .arg(encode_response(&resp))
            .arg("NX")
            .arg("EX")
            .arg(ttl.as_secs().max(1));
        let mut get = redis::cmd("GET");
        get.arg(&k);
        let v = self.submit(vec![set, get], false, None).await?;
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

    fn writable(&self) -> bool {
        self.status.healthy.load(Ordering::SeqCst) && self.status.recovered.load(Ordering::SeqCst)
    }

    fn record_position(&self, rider: &RiderId, at: GeoPoint, ts_ms: u64) {
        let mut map = self.positions.lock();
        let newer = map.get(rider).is_some_and(|cur| cur.1 > ts_ms);
        if !newer {
            map.insert(rider.clone(), (at, ts_ms));
        }
    }

    async fn save_token(&self, token: &str, principal: &str) -> Result<(), StoreError> {
        let mut c = redis::cmd("HSET");
        c.arg(self.key("tokens")).arg(token).arg(principal);
        self.submit(vec![c], false, None).await.map(|_| ())
    }

    async fn save_account(&self, account: &AccountRecord) -> Result<bool, StoreError> {
        let data = serde_json::to_string(account).map_err(unavailable)?;
        let mut c = redis::cmd("HSETNX");
        c.arg(self.key("accounts")).arg(&account.username).arg(data);
        let v = self.submit(vec![c], false, None).await?;
        Ok(matches!(v.first(), Some(Value::Int(1))))
    }

    async fn flush(&self, within: Duration) -> bool {
        // The writer is FIFO: once a PING queued now is answered, everything before it was
        // written (or kept for later, if Redis is away: then this fails).
        let deadline = Instant::now() + within;
        let ping = redis::cmd("PING");
        let answered = matches!(
            tokio::time::timeout(within, self.submit(vec![ping], false, None)).await,
            Ok(Ok(_))
        );
        // Positions: one more tick of the flusher.
        while answered && !self.positions.lock().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answered && self.pending_writes() == 0
    }

    async fn load_snapshot(&self) -> Result<Snapshot, StoreError> {
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
            let rows: Vec<(Option<String>, Option<u64>)> =
                tokio::time::timeout(self.cfg.op_timeout * 5, pipe.query_async(&mut conn))
                    .await
                    .map_err(|_| unavailable("timed out"))?
                    .map_err(unavailable)?;
            for (data, version) in rows {
                if let Some(mut rec) = data.and_then(|d| decode::<OrderRecord>("order", &d)) {
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
        let mut c = redis::cmd("HGETALL");
        c.arg(self.key("positions"));
        let pos: HashMap<String, String> = self.read(c).await?;
        for (r, s) in pos {
            if let (Ok(r), Some(p)) = (RiderId::parse(&r), parse_position(&s)) {
                snap.positions.insert(r, p);
            }
        }
        let mut c = redis::cmd("HGETALL");
        c.arg(self.key("escalations"));
        let escs: HashMap<String, String> = self.read(c).await?;
        snap.escalations = escs
            .values()
            .filter_map(|s| decode::<Escalation>("escalation", s))
            .collect();
        snap.escalations.sort_by(|a, b| {
            a.opened_ms
                .cmp(&b.opened_ms)
                .then_with(|| a.escalation_id.cmp(&b.escalation_id))
        });
        let mut c = redis::cmd("HGETALL");
        c.arg(self.key("tokens"));
        let tokens: HashMap<String, String> = self.read(c).await?;
        snap.tokens = tokens.into_iter().collect();
        let mut c = redis::cmd("HGETALL");
        c.arg(self.key("accounts"));
        let accounts: HashMap<String, String> = self.read(c).await?;
        snap.accounts = accounts
            .values()
            .filter_map(|s| decode::<AccountRecord>("account", s))
            .collect();
        Ok(snap)
    }
}

#[cfg(test)]
#[path = "redis_tests.rs"]
mod tests;
