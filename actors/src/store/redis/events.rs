//! The event log: every engine event appended to the `events` stream, for outside
//! consumers (docs/protocol.md, "Event stream"). Events go through the writer like any
//! other write (kept while Redis is away), batched, but nobody waits for them: a full queue
//! drops them (counted) rather than slow the engine down.

use super::writer::Op;
use super::RedisStore;
use crate::events::Event;
use crate::metric_names;
use redis::Cmd;
use std::time::Instant;
use tokio::sync::broadcast;

impl RedisStore {
    /// Appends every engine event to the `events` stream (bounded, `XADD MAXLEN ~`), in
    /// batches. Outside consumers read it with consumer groups (docs/protocol.md).
    pub fn spawn_event_log(&self, mut rx: broadcast::Receiver<Event>) {
        let tx = self.tx.clone();
        // The zone-less stream (`{city}` tagged on a cluster): events of no one zone.
        let stream = self.keys.scoped(None, "events");
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
                if cmds.is_empty() {
                    // A batch of order changes only: the order writes append them.
                    continue;
                }
                let op = Op {
                    cmds,
                    reply: None,
                    retain: true,
                    key: None,
                    record: "event",
                    queued: Instant::now(),
                };
                if tx.try_send(op).is_err() {
                    metrics::counter!(metric_names::STORE_EVENTS_DROPPED_TOTAL)
                        .increment(batch.len() as u64);
                }
            }
        });
    }
}

/// An event as the stream holds it: its `type` as a field of its own so consumers can
/// filter without decoding `data` (the whole event as JSON).
pub(super) fn stream_entry(e: &Event) -> Option<(String, String)> {
    let v = serde_json::to_value(e).ok()?;
    let kind = v.get("type")?.as_str()?.to_string();
    Some((kind, v.to_string()))
}

/// One `XADD` of an event. `order_changed` is not appended here: it goes into the stream
/// in the same script as the order's write (order_cas.rs), so a crash between the two
/// cannot lose it.
fn event_cmd(stream: &str, maxlen: usize, e: &Event) -> Option<Cmd> {
    if matches!(e, Event::OrderChanged { .. }) {
        return None;
    }
    let (kind, data) = stream_entry(e)?;
    let mut c = redis::cmd("XADD");
    c.arg(stream)
        .arg("MAXLEN")
        .arg("~")
        .arg(maxlen)
        .arg("*")
        .arg("type")
        .arg(kind)
        .arg("data")
        .arg(data);
    Some(c)
}
