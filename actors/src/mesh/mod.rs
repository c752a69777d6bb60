//! The mesh: calls between engine nodes through Redis Streams (docs/cluster.md, "Any
//! socket on any node"). Each node reads its own inbox stream `{node:<id>}:inbox` through
//! a consumer group of its own; a call is an entry in the callee's inbox, its answer an
//! entry in the caller's, matched by a correlation number. The mesh carries opaque
//! strings: what a call means is the engine's business ([`CallHandler`]).
//!
//! **Order.** Everything one node sends another (calls and one-way notes) leaves through
//! one queue, in the order it was sent, and the callee takes each entry in inbox order,
//! handing it to its actor's mailbox before reading the next: an actor hears a remote
//! sender's messages in the order they were sent, as it would from a local one.
//!
//! Why streams and not pub/sub: an entry waits in the inbox while its reader is busy or
//! briefly away, and is acknowledged only once handled; a caller that hears nothing within
//! its timeout gets [`MeshError::Timeout`] and the client retries (the engine's version
//! checks make a repeated command harmless).

mod wire;

use crate::metric_names;
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use redis::aio::ConnectionLike;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, Semaphore};

pub use wire::Entry;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum MeshError {
    /// The callee did not answer in time (dead, paused, cut off, or overloaded).
    #[error("node {0} did not answer in time")]
    Timeout(String),
    /// Too many calls are waiting for answers already here, or being handled there.
    #[error("too many calls in flight")]
    Busy,
    /// Redis refused or could not be reached.
    #[error("mesh: {0}")]
    Unavailable(String),
}

/// What a node does with what another sends it. Both are called in inbox order, one entry
/// at a time, so neither may block: `handle` does its synchronous part (putting the
/// message in an actor's mailbox) at once and returns the answer as a future.
pub trait CallHandler: Send + Sync + 'static {
    fn handle(&self, from: &str, body: String) -> BoxFuture<'static, String>;
    fn note(&self, from: &str, body: String);
}

/// Limits and timings of one node's mesh.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// Key prefix (the store's), so the inboxes live beside the rest.
    pub prefix: String,
    /// This node's id: its inbox and its name as a caller.
    pub node: String,
    /// A call unanswered this long fails with `Timeout`.
    pub call_timeout: Duration,
    /// Calls waiting for answers at most; beyond, `Busy`.
    pub max_in_flight: usize,
    /// Calls from others handled at once at most; the rest wait in the inbox.
    pub max_handling: usize,
    /// Approximate length an inbox is trimmed to.
    pub inbox_maxlen: usize,
    /// Entries waiting to be sent at most; a note beyond is dropped (counted), a call
    /// refused.
    pub max_queued: usize,
}

impl MeshConfig {
    pub fn new(prefix: &str, node: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            node: node.to_string(),
            call_timeout: Duration::from_secs(5),
            max_in_flight: 65_536,
            max_handling: 1024,
            inbox_maxlen: 100_000,
            max_queued: 65_536,
        }
    }

    /// The inbox stream of `node`.
    pub fn inbox(&self, node: &str) -> String {
        format!("{}{{node:{node}}}:inbox", self.prefix)
    }
}

/// One node's end of the mesh. Cheap to share (`Arc`).
pub struct Mesh<C> {
    cfg: MeshConfig,
    /// For appending answers and acknowledging; may be shared with other users.
    conn: C,
    /// Outgoing calls and notes, in the order they were made (see "Order" above).
    out: mpsc::Sender<(String, Entry)>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Result<String, MeshError>>>>,
    next: AtomicU64,
}

impl<C> Mesh<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Opens this node's inbox (creating its consumer group) and starts reading it.
    /// `reader` must be a connection of its own: the reader blocks on it.
    pub async fn start(
        cfg: MeshConfig,
        conn: C,
        mut reader: C,
        handler: Arc<dyn CallHandler>,
    ) -> Result<Arc<Self>, MeshError> {
        let inbox = cfg.inbox(&cfg.node);
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&inbox)
            .arg("engine")
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut reader)
            .await;
        if let Err(e) = created {
            if e.code() != Some("BUSYGROUP") {
                return Err(MeshError::Unavailable(e.to_string()));
            }
        }
        let (out, rx) = mpsc::channel(cfg.max_queued.max(1));
        tokio::spawn(send_queued(rx, conn.clone(), cfg.clone()));
        let mesh = Arc::new(Mesh {
            cfg,
            conn,
            out,
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        });
        tokio::spawn(read_inbox(Arc::downgrade(&mesh), reader, handler));
        Ok(mesh)
    }

    pub fn node(&self) -> &str {
        &self.cfg.node
    }

    /// Calls `to` with `body`: the call is queued at once, in order with everything sent
    /// before it (see "Order" above); the future waits for its answer.
    pub fn call(
        self: &Arc<Self>,
        to: &str,
        body: String,
    ) -> impl std::future::Future<Output = Result<String, MeshError>> + Send + 'static {
        let queued = self.queue_call(to, body);
        let (mesh, to, timeout) = (self.clone(), to.to_string(), self.cfg.call_timeout);
        async move {
            let r = match queued {
                Err(e) => Err(e),
                Ok((corr, rx)) => match tokio::time::timeout(timeout, rx).await {
                    Ok(Ok(answer)) => answer,
                    _ => {
                        mesh.pending.lock().remove(&corr);
                        Err(MeshError::Timeout(to))
                    }
                },
            };
            let outcome = match &r {
                Ok(_) => "answered",
                Err(MeshError::Timeout(_)) => "timeout",
                Err(MeshError::Busy) => "refused",
                Err(MeshError::Unavailable(_)) => "unavailable",
            };
            metrics::counter!(metric_names::MESH_CALLS_TOTAL, "outcome" => outcome).increment(1);
            r
        }
    }

    #[allow(clippy::type_complexity)]
    fn queue_call(
        &self,
        to: &str,
        body: String,
    ) -> Result<(u64, oneshot::Receiver<Result<String, MeshError>>), MeshError> {
        let corr = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.pending.lock();
            if pending.len() >= self.cfg.max_in_flight {
                return Err(MeshError::Busy);
            }
            pending.insert(corr, tx);
        }
        let entry = Entry::Call {
            from: self.cfg.node.clone(),
            corr,
            body,
        };
        if self.out.try_send((to.to_string(), entry)).is_err() {
            self.pending.lock().remove(&corr);
            return Err(MeshError::Busy);
        }
        Ok((corr, rx))
    }

    /// Sends `body` to `to` with no answer expected, after everything sent before it.
    /// Returns false if it could not be queued (counted as dropped).
    pub fn note(&self, to: &str, body: String) -> bool {
        let entry = Entry::Note {
            from: self.cfg.node.clone(),
            body,
        };
        let queued = self.out.try_send((to.to_string(), entry)).is_ok();
        let outcome = if queued { "queued" } else { "dropped" };
        metrics::counter!(metric_names::MESH_NOTES_TOTAL, "outcome" => outcome).increment(1);
        queued
    }

    /// Calls waiting for answers now.
    pub fn in_flight(&self) -> usize {
        self.pending.lock().len()
    }

    async fn append(&self, to: &str, entry: &Entry) -> Result<(), MeshError> {
        let mut c = redis::cmd("XADD");
        c.arg(self.cfg.inbox(to))
            .arg("MAXLEN")
            .arg("~")
            .arg(self.cfg.inbox_maxlen)
            .arg("*");
        for (k, v) in entry.fields() {
            c.arg(k).arg(v);
        }
        let mut conn = self.conn.clone();
        c.query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| MeshError::Unavailable(e.to_string()))
    }

    fn answered(&self, corr: u64, body: String) {
        if let Some(tx) = self.pending.lock().remove(&corr) {
            let _ = tx.send(Ok(body));
        }
    }

    fn refused(&self, corr: u64) {
        if let Some(tx) = self.pending.lock().remove(&corr) {
            let _ = tx.send(Err(MeshError::Busy));
        }
    }
}

/// How long an inbox read may take before it is given up on (its block is 500 ms).
const READ_GIVE_UP: Duration = Duration::from_secs(3);

/// The inbox reader: answers go to their waiting callers; calls run on `handler`, at most
/// `max_handling` at once, and their answers go to the caller's inbox. Every entry is
/// acknowledged once taken care of. Ends when the mesh is dropped.
async fn read_inbox<C>(mesh: std::sync::Weak<Mesh<C>>, mut reader: C, handler: Arc<dyn CallHandler>)
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let (inbox, node, slots) = match mesh.upgrade() {
        Some(m) => (
            m.cfg.inbox(&m.cfg.node),
            m.cfg.node.clone(),
            Arc::new(Semaphore::new(m.cfg.max_handling)),
        ),
        None => return,
    };
    // Entries Redis handed to this reader whose reply never arrived (the connection broke
    // mid-read: a partition, a Redis restart) stay pending for it and are never handed out
    // again as new: after a failed read (and at start) the reader first takes its pending
    // entries (id 0), then new ones (`>`). An entry taken twice is handled twice (its
    // acknowledgement may have been the part lost); what the mesh carries tolerates that.
    let mut pending_first = true;
    loop {
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg("engine")
            .arg(&node)
            .arg("COUNT")
            .arg(256);
        if !pending_first {
            read.arg("BLOCK").arg(500);
        }
        read.arg("STREAMS")
            .arg(&inbox)
            .arg(if pending_first { "0" } else { ">" });
        // A read that outlives its block by far is a connection gone quiet (a partition
        // drops packets without a word): given up on, as a failed read.
        let read: redis::RedisResult<redis::streams::StreamReadReply> =
            match tokio::time::timeout(READ_GIVE_UP, read.query_async(&mut reader)).await {
                Ok(r) => r,
                Err(_) => Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "inbox read timed out",
                ))),
            };
        let Some(m) = mesh.upgrade() else { return };
        let reply = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "mesh: inbox not readable");
                drop(m);
                pending_first = true;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if pending_first && reply.keys.iter().all(|k| k.ids.is_empty()) {
            pending_first = false;
        }
        let mut done = Vec::new();
        for key in reply.keys {
            for item in key.ids {
                done.push(item.id.clone());
                match Entry::parse(&item.map) {
                    Some(Entry::Answer { corr, body }) => m.answered(corr, body),
                    Some(Entry::Refused { corr }) => m.refused(corr),
                    Some(Entry::Note { from, body }) => handler.note(&from, body),
                    Some(Entry::Call { from, corr, body }) => {
                        // Never wait here for a slot: a handler may itself be waiting for
                        // an answer this loop has to read. A full node refuses instead.
                        let Ok(permit) = slots.clone().try_acquire_owned() else {
                            metrics::counter!(metric_names::MESH_CALLS_REFUSED_TOTAL).increment(1);
                            let m = m.clone();
                            tokio::spawn(async move {
                                let _ = m.append(&from, &Entry::Refused { corr }).await;
                            });
                            continue;
                        };
                        // The message reaches its actor now, in inbox order; only the
                        // answer is awaited apart.
                        let answer = handler.handle(&from, body);
                        let m = m.clone();
                        tokio::spawn(async move {
                            let body = answer.await;
                            if let Err(e) = m.append(&from, &Entry::Answer { corr, body }).await {
                                tracing::warn!(error = %e, to = %from, "mesh: answer not sent");
                            }
                            drop(permit);
                        });
                    }
                    None => tracing::warn!(id = %item.id, "mesh: unreadable inbox entry"),
                }
            }
        }
        if !done.is_empty() {
            let mut ack = redis::cmd("XACK");
            ack.arg(&inbox).arg("engine").arg(&done);
            let mut conn = m.conn.clone();
            if let Err(e) = ack.query_async::<u64>(&mut conn).await {
                tracing::warn!(error = %e, "mesh: acknowledgement failed");
            }
        }
    }
}

/// Sends queued calls and notes in order: whatever is queued goes as one pipeline (one
/// round trip for a burst), entries for one inbox in the order they were queued.
async fn send_queued<C>(mut rx: mpsc::Receiver<(String, Entry)>, mut conn: C, cfg: MeshConfig)
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 512).await > 0 {
        let mut pipe = redis::pipe();
        for (to, entry) in batch.drain(..) {
            let mut c = redis::cmd("XADD");
            c.arg(cfg.inbox(&to))
                .arg("MAXLEN")
                .arg("~")
                .arg(cfg.inbox_maxlen)
                .arg("*");
            for (k, v) in entry.fields() {
                c.arg(k).arg(v);
            }
            pipe.add_command(c).ignore();
        }
        // A failed send loses these entries: callers time out and retry; notes are
        // counted as failed (what they carry is also in the store, read on recovery).
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(error = %e, "mesh: entries not sent");
            metrics::counter!(metric_names::MESH_NOTES_TOTAL, "outcome" => "failed").increment(1);
        }
    }
}

#[cfg(test)]
mod tests;
