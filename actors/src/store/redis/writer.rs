//! The single writer task: group commit, retries with backoff, and kept writes while
//! Redis is away.
//!
//! Every write is a handful of Redis commands handed over a bounded channel. The writer
//! takes whatever is queued (up to `max_batch`, optionally lingering a moment for more) and
//! sends it as one pipeline, so a burst of requests costs one round trip, not one each.
//! One task, so writes reach Redis in the order they were queued (`Store::flush` relies on
//! it).

use super::config::RedisConfig;
use super::conn::StoreConn;
use super::health::Status;
use super::order_cas::CAS_ORDER_LUA;
use super::unavailable;
use crate::metric_names;
use crate::store::StoreError;
use redis::{Cmd, Value};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

pub(super) type Reply = oneshot::Sender<Result<Vec<Value>, StoreError>>;

/// One write: its commands go into one pipeline together.
pub(super) struct Op {
    pub(super) cmds: Vec<Cmd>,
    pub(super) reply: Option<Reply>,
    /// The engine already holds this change in memory: if Redis is away, keep the write
    /// (latest per `key`) and flush it when Redis is back.
    pub(super) retain: bool,
    /// Record key, for "latest wins" among kept writes (None: always kept, e.g. events).
    pub(super) key: Option<String>,
    /// What kind of record this writes (`order`, `rider`, …): the label of its
    /// `dispatch_store_write_seconds` sample.
    pub(super) record: &'static str,
    pub(super) queued: Instant,
}

/// The single writer: group commit, retries with backoff, kept writes during an outage.
pub(super) async fn writer(
    mut rx: mpsc::Receiver<Op>,
    mut conn: StoreConn,
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
            // With writes kept, wake now and then to flush them once Redis is back, even
            // if nothing new arrives.
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
            // Nothing new and Redis still away: the pinger says when to try again.
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
        // Redis already known to be away: fail at once rather than make each batch's
        // callers wait out the backoff.
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
                    // The connection may be new (or Redis restarted): load the script again.
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
                    metrics::histogram!(metric_names::STORE_WRITE_SECONDS, "record" => op.record)
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
    conn: &mut StoreConn,
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

/// Errors that mean Redis is away (worth retrying, and worth keeping writes for), as
/// opposed to Redis refusing the pipeline itself. On a cluster that includes a cluster
/// still settling (`CLUSTERDOWN` while a master is away or rejoining, `TRYAGAIN`, and
/// redirections the client gave up following).
fn is_outage(e: &redis::RedisError) -> bool {
    e.is_cluster_error()
        || e.is_io_error()
        || e.is_unrecoverable_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
}
