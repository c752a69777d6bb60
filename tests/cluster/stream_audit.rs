//! The audit of a cluster run over what Redis kept: every zone's event stream read back
//! (docs/cluster.md, "Fencing"). Each entry an order write appended names its writer and
//! the lease its write was checked against (`lease "<node> <fence>"`), so the audit can
//! say, without trusting any node:
//! - no write from a fenced-off node landed: in each zone's stream the fences never go
//!   back, and each write was made under the writer's own lease;
//! - no order moved backwards: each order's versions strictly increase, in one zone;
//! - no order was held by two riders at once: its rider changes only after it left the
//!   rider's hands (back to `accepted`, or final).

use std::collections::HashMap;

/// One order write as a zone's stream holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: String,
    pub writer: String,
    pub lease_node: String,
    pub fence: u64,
    pub order_id: String,
    pub version: u64,
    pub status: String,
    pub rider_id: Option<String>,
}

/// What the audit saw, to show it saw the run's takeovers.
#[derive(Debug, Default)]
pub struct Seen {
    pub entries: usize,
    pub orders: usize,
    /// Zones whose stream has entries from more than one writer.
    pub zones_changing_hands: usize,
    /// Each order's status as its last write left it.
    pub last_status: HashMap<String, String>,
}

/// Parses one `XRANGE` entry (`type`, `data`, `writer`, `lease` fields). Entries that are
/// not order writes are `None`.
pub fn parse(id: &str, fields: &[(String, String)]) -> Result<Option<Entry>, String> {
    let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
    if get("type") != Some("order_changed") {
        return Ok(None);
    }
    let data: serde_json::Value =
        serde_json::from_str(get("data").ok_or(format!("{id}: no data"))?)
            .map_err(|e| format!("{id}: data: {e}"))?;
    let lease = get("lease").ok_or(format!("{id}: no lease"))?;
    let (lease_node, fence) = lease
        .split_once(' ')
        .ok_or(format!("{id}: a write made under no lease: {lease:?}"))?;
    let order = &data["order"];
    Ok(Some(Entry {
        id: id.to_string(),
        writer: get("writer").ok_or(format!("{id}: no writer"))?.to_string(),
        lease_node: lease_node.to_string(),
        fence: fence.parse().map_err(|e| format!("{id}: fence: {e}"))?,
        order_id: order["order_id"].as_str().ok_or("no order_id")?.to_string(),
        version: order["version"].as_u64().ok_or("no version")?,
        status: order["status"].as_str().ok_or("no status")?.to_string(),
        rider_id: order["rider_id"].as_str().map(str::to_string),
    }))
}

/// Checks each zone's entries (in stream order); the first fault found is the error.
pub fn audit(zones: &[(String, Vec<Entry>)]) -> Result<Seen, String> {
    let mut seen = Seen::default();
    // order -> (zone, last version, rider holding it)
    let mut orders: HashMap<&str, (&str, u64, Option<&str>)> = HashMap::new();
    for (zone, entries) in zones {
        let mut fence = 0;
        let mut writers = std::collections::HashSet::new();
        for e in entries {
            seen.entries += 1;
            writers.insert(e.writer.as_str());
            if e.lease_node != e.writer {
                return Err(format!(
                    "{zone} {}: {} wrote under {}'s lease",
                    e.id, e.writer, e.lease_node
                ));
            }
            if e.fence < fence {
                return Err(format!(
                    "{zone} {}: {} wrote with fence {} after fence {fence} (a fenced-off write landed)",
                    e.id, e.writer, e.fence
                ));
            }
            fence = e.fence;
            seen.last_status
                .insert(e.order_id.clone(), e.status.clone());
            let held = matches!(e.status.as_str(), "assigned" | "picked_up" | "delivered");
            let rider = e.rider_id.as_deref().filter(|_| held);
            match orders.get_mut(e.order_id.as_str()) {
                None => {
                    orders.insert(&e.order_id, (zone, e.version, rider));
                }
                Some((z, version, holder)) => {
                    if z != zone {
                        return Err(format!("{}: written in {z} and in {zone}", e.order_id));
                    }
                    if e.version <= *version {
                        return Err(format!(
                            "{zone} {}: {} version {} after version {version}",
                            e.id, e.order_id, e.version
                        ));
                    }
                    if let (Some(was), Some(now)) = (*holder, rider) {
                        if was != now {
                            return Err(format!(
                                "{zone} {}: {} held by {was} and then by {now}",
                                e.id, e.order_id
                            ));
                        }
                    }
                    *version = e.version;
                    *holder = rider;
                }
            }
        }
        if writers.len() > 1 {
            seen.zones_changing_hands += 1;
        }
    }
    seen.orders = orders.len();
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(writer: &str, fence: u64, order: &str, version: u64, status: &str) -> Entry {
        Entry {
            id: format!("{fence}-{version}"),
            writer: writer.into(),
            lease_node: writer.into(),
            fence,
            order_id: order.into(),
            version,
            status: status.into(),
            rider_id: None,
        }
    }

    fn held(mut e: Entry, rider: &str) -> Entry {
        e.rider_id = Some(rider.into());
        e
    }

    #[test]
    fn a_run_with_a_takeover_passes() {
        let z = vec![
            entry("n0", 1, "o1", 1, "paid"),
            held(entry("n0", 1, "o1", 2, "assigned"), "r1"),
            held(entry("n1", 2, "o1", 3, "picked_up"), "r1"),
            held(entry("n1", 2, "o1", 4, "delivered"), "r1"),
        ];
        let seen = audit(&[("z".into(), z)]).unwrap();
        assert_eq!(
            (seen.entries, seen.orders, seen.zones_changing_hands),
            (4, 1, 1)
        );
    }

    #[test]
    fn a_write_with_an_older_fence_is_caught() {
        let z = vec![
            entry("n1", 2, "o1", 3, "accepted"),
            entry("n0", 1, "o2", 1, "paid"),
        ];
        let err = audit(&[("z".into(), z)]).unwrap_err();
        assert!(err.contains("fenced-off"), "{err}");
    }

    #[test]
    fn a_write_under_another_nodes_lease_is_caught() {
        let mut e = entry("n1", 2, "o1", 1, "paid");
        e.lease_node = "n0".into();
        assert!(audit(&[("z".into(), vec![e])]).is_err());
    }

    #[test]
    fn a_version_going_back_is_caught() {
        let z = vec![
            entry("n0", 1, "o1", 2, "paid"),
            entry("n0", 1, "o1", 2, "accepted"),
        ];
        assert!(audit(&[("z".into(), z)]).is_err());
    }

    #[test]
    fn two_riders_at_once_are_caught_and_a_reassignment_is_not() {
        let reassigned = vec![
            held(entry("n0", 1, "o1", 1, "assigned"), "r1"),
            entry("n0", 1, "o1", 2, "accepted"),
            held(entry("n0", 1, "o1", 3, "assigned"), "r2"),
        ];
        assert!(audit(&[("z".into(), reassigned)]).is_ok());
        let twice = vec![
            held(entry("n0", 1, "o1", 1, "assigned"), "r1"),
            held(entry("n0", 1, "o1", 2, "assigned"), "r2"),
        ];
        assert!(audit(&[("z".into(), twice)]).is_err());
    }

    #[test]
    fn entries_parse_from_stream_fields() {
        let f = |k: &str, v: &str| (k.to_string(), v.to_string());
        let data = r#"{"type":"order_changed","order":{"order_id":"o1","version":3,"status":"assigned","rider_id":"r1"}}"#;
        let fields = vec![
            f("type", "order_changed"),
            f("data", data),
            f("writer", "n1"),
            f("lease", "n1 7"),
        ];
        let e = parse("1-0", &fields).unwrap().unwrap();
        assert_eq!(
            (e.fence, e.version, e.rider_id.as_deref()),
            (7, 3, Some("r1"))
        );
        let unleased = vec![
            f("type", "order_changed"),
            f("data", data),
            f("writer", "n1"),
            f("lease", ""),
        ];
        assert!(parse("1-0", &unleased).is_err());
        assert_eq!(parse("1-0", &[f("type", "rider_changed")]), Ok(None));
    }
}
