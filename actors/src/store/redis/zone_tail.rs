//! Reading a zone's event stream from another node (docs/cluster.md, "The whole city on
//! every dashboard"): the entries after a stream id, as the order script wrote them
//! (order_cas.rs: `type`, `data`, `writer`, `lease`). A plain read on the store's
//! connection, which routes it to the zone's slot on a Redis Cluster as it does every
//! other read; it never blocks, so it can share that connection with everything else.

use super::RedisStore;
use crate::domain::zone::ZoneId;
use crate::store::StoreError;
use redis::Value;

/// One entry of a zone's event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneEntry {
    /// The stream id (`<ms>-<seq>`): the cursor to read on from.
    pub id: String,
    /// The event's `type` (`order_changed` for every entry the order script writes).
    pub kind: String,
    /// The whole event as JSON.
    pub data: String,
    /// The node whose write appended it; None for an entry written without one.
    pub writer: Option<String>,
}

/// The stream id before every entry: reading after it reads a stream from its start.
pub const STREAM_START: &str = "0-0";

impl RedisStore {
    /// The id of `zone`'s latest event ([`STREAM_START`] while it has none): reading
    /// after it gets only what comes from now on.
    pub async fn zone_events_end(&self, zone: ZoneId) -> Result<String, StoreError> {
        let mut c = redis::cmd("XREVRANGE");
        c.arg(self.keys.scoped(Some(zone), "events"))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
        let last: Value = self.read(c).await?;
        Ok(stream_entries(&last)
            .into_iter()
            .next()
            .map_or_else(|| STREAM_START.to_string(), |e| e.id))
    }

    /// The id of the latest entry `writer` appended among the last `within` entries of
    /// `zone`'s stream (None if it wrote none of them): where a node that held the zone
    /// stopped telling its sockets itself.
    pub async fn zone_events_last_by(
        &self,
        zone: ZoneId,
        writer: &str,
        within: usize,
    ) -> Result<Option<String>, StoreError> {
        let mut c = redis::cmd("XREVRANGE");
        c.arg(self.keys.scoped(Some(zone), "events"))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(within.max(1));
        let last: Value = self.read(c).await?;
        Ok(stream_entries(&last)
            .into_iter()
            .find(|e| e.writer.as_deref() == Some(writer))
            .map(|e| e.id))
    }

    /// At most `count` entries of `zone`'s event stream after the id `after` (exclusive),
    /// oldest first. Entries trimmed away meanwhile (the stream is capped at
    /// `store.event_stream_maxlen`) are simply not there.
    pub async fn zone_events_after(
        &self,
        zone: ZoneId,
        after: &str,
        count: usize,
    ) -> Result<Vec<ZoneEntry>, StoreError> {
        let mut c = redis::cmd("XRANGE");
        c.arg(self.keys.scoped(Some(zone), "events"))
            .arg(format!("({after}"))
            .arg("+")
            .arg("COUNT")
            .arg(count.max(1));
        let got: Value = self.read(c).await?;
        Ok(stream_entries(&got))
    }
}

/// The entries of an `XRANGE`/`XREVRANGE` answer; one without an id is skipped, missing
/// fields read as empty (the reader decides what an empty `data` means).
pub(super) fn stream_entries(v: &Value) -> Vec<ZoneEntry> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(parts) = item else {
                return None;
            };
            let id = text(parts.first()?)?;
            let mut e = ZoneEntry {
                id,
                kind: String::new(),
                data: String::new(),
                writer: None,
            };
            if let Some(Value::Array(fields)) = parts.get(1) {
                for kv in fields.chunks(2) {
                    let (Some(k), Some(v)) = (text(&kv[0]), kv.get(1).and_then(text)) else {
                        continue;
                    };
                    match k.as_str() {
                        "type" => e.kind = v,
                        "data" => e.data = v,
                        "writer" => e.writer = Some(v),
                        _ => {}
                    }
                }
            }
            Some(e)
        })
        .collect()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|f| bulk(f)).collect()),
        ])
    }

    #[test]
    fn an_answer_reads_as_entries_with_their_writer() {
        let v = Value::Array(vec![
            entry(
                "1-0",
                &[
                    "type",
                    "order_changed",
                    "data",
                    "{}",
                    "writer",
                    "node-a",
                    "lease",
                    "node-a 3",
                ],
            ),
            entry("2-0", &["type", "order_changed", "data", "{\"x\":1}"]),
        ]);
        let got = stream_entries(&v);
        assert_eq!(
            got,
            vec![
                ZoneEntry {
                    id: "1-0".into(),
                    kind: "order_changed".into(),
                    data: "{}".into(),
                    writer: Some("node-a".into()),
                },
                ZoneEntry {
                    id: "2-0".into(),
                    kind: "order_changed".into(),
                    data: "{\"x\":1}".into(),
                    writer: None,
                },
            ]
        );
    }

    #[test]
    fn an_empty_or_odd_answer_reads_as_no_entries() {
        assert!(stream_entries(&Value::Nil).is_empty());
        assert!(stream_entries(&Value::Array(vec![])).is_empty());
        assert!(stream_entries(&Value::Array(vec![Value::Int(3)])).is_empty());
        // An odd field count: the last name without a value is ignored.
        let got = stream_entries(&Value::Array(vec![entry("5-1", &["type"])]));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, "");
    }
}
