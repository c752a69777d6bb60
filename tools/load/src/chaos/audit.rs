//! The audit after each kill: the Redis state held against what clients were told.
//! - every acknowledged order exists, in a status its acknowledged one can legally lead
//!   to, at a version no older (else it counts as lost);
//! - every live order has a running timer: one armed in its record (or an open offer's
//!   expiry) and not overdue by more than the slack (a timer the engine forgot to re-arm
//!   would stay overdue); `pending_payment` has none by protocol, it waits for the customer;
//! - no order is held by two riders (rider records, checked once the run is quiet);
//! - no event is missing: every status in an order's timeline has its `order_changed`
//!   entry in the event stream.

use super::ledger::{is_final, reachable, Acked};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Default)]
pub struct OrderAudit {
    pub acked: usize,
    /// Acknowledged orders missing from Redis, or found behind what was acknowledged.
    pub lost: Vec<String>,
    pub live: usize,
    pub live_without_timer: Vec<String>,
    pub overdue: Vec<String>,
    pub by_status: BTreeMap<String, usize>,
}

fn record(conn: &mut redis::Connection, prefix: &str, id: &str) -> Option<Value> {
    let data: Option<String> = redis::cmd("HGET")
        .arg(format!("{prefix}order:{id}"))
        .arg("data")
        .query(conn)
        .ok()?;
    serde_json::from_str(&data?).ok()
}

/// The earliest deadline an order's record holds: its timers and open offers' expiry.
fn earliest_due_ms(rec: &Value) -> Option<u64> {
    let timers = rec["timers"].as_array().into_iter().flatten();
    let offers = rec["offers"]["open"].as_array().into_iter().flatten();
    timers
        .filter_map(|t| t["due_ms"].as_u64())
        .chain(offers.filter_map(|o| o["offer"]["expires_at_ms"].as_u64()))
        .min()
}

pub fn orders(
    conn: &mut redis::Connection,
    prefix: &str,
    acked: &HashMap<String, Acked>,
    now_ms: u64,
    slack_ms: u64,
) -> OrderAudit {
    let mut a = OrderAudit {
        acked: acked.len(),
        ..OrderAudit::default()
    };
    for (id, ack) in acked {
        let Some(rec) = record(conn, prefix, id) else {
            a.lost
                .push(format!("{id}: acknowledged {} but not stored", ack.status));
            continue;
        };
        let status = rec["order"]["status"].as_str().unwrap_or("?").to_string();
        let version = rec["order"]["version"].as_u64().unwrap_or(0);
        if !reachable(&ack.status, &status) || version < ack.version {
            a.lost.push(format!(
                "{id}: acknowledged {} v{}, stored {status} v{version}",
                ack.status, ack.version
            ));
        }
        *a.by_status.entry(status.clone()).or_default() += 1;
        if is_final(&status) || status == "pending_payment" {
            continue;
        }
        a.live += 1;
        match earliest_due_ms(&rec) {
            None => a.live_without_timer.push(format!("{id} ({status})")),
            Some(due) if due + slack_ms < now_ms => a
                .overdue
                .push(format!("{id} ({status}) due {} ms ago", now_ms - due)),
            Some(_) => {}
        }
    }
    a
}

/// Orders that two rider records both list as held.
pub fn two_riders(conn: &mut redis::Connection, prefix: &str) -> Vec<String> {
    let ids: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{prefix}riders"))
        .query(conn)
        .unwrap_or_default();
    let mut holder: HashMap<String, String> = HashMap::new();
    let mut twice = Vec::new();
    for r in ids {
        let data: Option<String> = redis::cmd("GET")
            .arg(format!("{prefix}rider:{r}"))
            .query(conn)
            .unwrap_or(None);
        let Some(v) = data.and_then(|d| serde_json::from_str::<Value>(&d).ok()) else {
            continue;
        };
        for o in v["order_ids"].as_array().into_iter().flatten() {
            let Some(o) = o.as_str() else { continue };
            if let Some(other) = holder.insert(o.to_string(), r.clone()) {
                twice.push(format!("{o}: {other} and {r}"));
            }
        }
    }
    twice
}

#[derive(Debug, Default)]
pub struct EventAudit {
    pub entries: usize,
    pub order_changed: usize,
    pub statuses_checked: usize,
    pub missing: Vec<String>,
}

/// Every status in each acknowledged order's stored timeline has its `order_changed`.
pub fn events(
    conn: &mut redis::Connection,
    prefix: &str,
    acked: &HashMap<String, Acked>,
) -> EventAudit {
    let mut a = EventAudit::default();
    let mut seen: HashMap<String, HashSet<String>> = HashMap::new();
    let stream = format!("{prefix}events");
    let mut from = "-".to_string();
    loop {
        let page: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(&stream)
            .arg(&from)
            .arg("+")
            .arg("COUNT")
            .arg(5000)
            .query(conn)
            .unwrap_or_default();
        let Some((last, _)) = page.last() else { break };
        from = format!("({last}");
        for (_, fields) in &page {
            a.entries += 1;
            if fields.get(1).map(String::as_str) != Some("order_changed") {
                continue;
            }
            a.order_changed += 1;
            let Some(v) = fields
                .get(3)
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
            else {
                continue;
            };
            if let (Some(id), Some(s)) = (
                v["order"]["order_id"].as_str(),
                v["order"]["status"].as_str(),
            ) {
                seen.entry(id.to_string())
                    .or_default()
                    .insert(s.to_string());
            }
        }
    }
    for id in acked.keys() {
        let Some(rec) = record(conn, prefix, id) else {
            continue;
        };
        for step in rec["order"]["timeline"].as_array().into_iter().flatten() {
            let Some(s) = step["status"].as_str() else {
                continue;
            };
            a.statuses_checked += 1;
            if !seen.get(id).is_some_and(|set| set.contains(s)) {
                a.missing.push(format!("{id}: {s}"));
            }
        }
    }
    a
}
