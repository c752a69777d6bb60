//! Zones in the Redis store against a real Redis at 127.0.0.1:6379 (a key prefix of its
//! own per test): tagged keys, fencing by the zone's lease, orders found by id through
//! `order_zone`, and recovery reading every zone.

use super::zone_tail::{ZoneEntry, STREAM_START};
use super::*;
use crate::domain::order::tests::sample_order;
use crate::domain::order::OrderStatus;
use crate::domain::zone::ZoneId;
use crate::domain::OrderId;
use std::time::Duration;

fn open(test: &str, linger: Duration) -> RedisStore {
    let prefix = format!("test:{test}:{}:", rand::random::<u64>());
    RedisStore::open(RedisConfig {
        prefix,
        linger,
        ..RedisConfig::default()
    })
    .expect("redis store")
}

fn store(test: &str) -> RedisStore {
    open(test, Duration::ZERO)
}

const A: &str = "872a1072bffffff";
const B: &str = "872a10729ffffff";

fn zone(hex: &str) -> ZoneId {
    ZoneId::parse(hex).unwrap()
}

/// A new order `id` of `zone` (version 1: its first write).
fn order(id: &str, zone: Option<ZoneId>) -> OrderRecord {
    let mut rec = OrderRecord::bare(sample_order());
    rec.order.order_id = OrderId::parse(id).unwrap();
    rec.order.version = 1;
    rec.zone = zone;
    rec
}

async fn set(s: &RedisStore, key: &str, value: &str) {
    let mut c = redis::cmd("SET");
    c.arg(key).arg(value);
    s.read::<()>(c).await.unwrap();
}

async fn exists(s: &RedisStore, key: &str) -> bool {
    let mut c = redis::cmd("EXISTS");
    c.arg(key);
    s.read::<u64>(c).await.unwrap() == 1
}

/// This store holds `zone` with `fence` and the zone's lease says so.
async fn own(s: &RedisStore, z: ZoneId, fence: u64) {
    s.hold_zone(z, fence);
    let lease = format!("{} {fence}", s.node_id());
    set(s, &s.zone_key(z, "lease"), &lease).await;
}

#[tokio::test]
async fn an_order_of_a_zone_lives_under_the_zone_tag_and_one_without_as_before() {
    let s = store("zone-keys");
    let z = zone(A);
    own(&s, z, 1).await;
    s.save_order_record(&order("o_zoned", Some(z)))
        .await
        .unwrap();
    s.save_order_record(&order("o_plain", None)).await.unwrap();
    let p = s.config().prefix.clone();
    let tag = format!("{p}{{z:{A}}}:");
    let mut live = redis::cmd("SMEMBERS");
    live.arg(format!("{tag}orders:live"));
    let zone_live: Vec<String> = s.read(live).await.unwrap();
    let mut of = redis::cmd("GET");
    of.arg(format!("{p}order_zone:o_zoned"));
    let order_zone: Option<String> = s.read(of).await.unwrap();
    let mut zones = redis::cmd("SMEMBERS");
    zones.arg(format!("{p}zones"));
    let listed: Vec<String> = s.read(zones).await.unwrap();
    let found = (
        exists(&s, &format!("{tag}order:o_zoned")).await,
        exists(&s, &format!("{p}order:o_zoned")).await,
        exists(&s, &format!("{p}order:o_plain")).await,
        exists(&s, &format!("{p}order_zone:o_plain")).await,
    );
    s.delete_all().await.unwrap();
    assert_eq!(found, (true, false, true, false));
    assert_eq!(zone_live, vec!["o_zoned".to_string()]);
    assert_eq!(order_zone.as_deref(), Some(A));
    assert_eq!(listed, vec![A.to_string()]);
}

#[tokio::test]
async fn a_write_is_fenced_unless_the_lease_names_this_node_and_fence() {
    let s = store("fence");
    let z = zone(A);
    let lease = s.zone_key(z, "lease");
    s.hold_zone(z, 7);
    let rec = order("o_f1", Some(z));
    let fenced = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Fenced(ref m)) if m == A);
    // The lease names another node.
    set(&s, &lease, "someoneelse 7").await;
    let other_node = s.save_order_record(&rec).await;
    // This node, but another fencing number (it took the zone again since).
    set(&s, &lease, &format!("{} 8", s.node_id())).await;
    let other_fence = s.save_order_record(&rec).await;
    let written_while_fenced = exists(&s, &s.zone_key(z, "order:o_f1")).await;
    // Exactly this node and fence.
    set(&s, &lease, &format!("{} 7", s.node_id())).await;
    let held = s.save_order_record(&rec).await;
    let loaded = s.load_order_record(&rec.order.order_id).await.unwrap();
    s.delete_all().await.unwrap();
    assert!(fenced(other_node.clone()), "{other_node:?}");
    assert!(fenced(other_fence.clone()), "{other_fence:?}");
    assert!(!written_while_fenced, "a fenced write leaves nothing");
    assert_eq!(held, Ok(()));
    assert_eq!(loaded.map(|r| r.zone), Some(Some(z)));
}

#[tokio::test]
async fn a_zone_not_held_is_refused_without_sending() {
    let s = store("not-held");
    let z = zone(A);
    // The lease even names this node: what counts first is what the node holds.
    set(&s, &s.zone_key(z, "lease"), &format!("{} 1", s.node_id())).await;
    let r = s.save_order_record(&order("o_nh", Some(z))).await;
    let sent = (
        exists(&s, &s.zone_key(z, "order:o_nh")).await,
        exists(&s, &s.key("order_zone:o_nh")).await,
        exists(&s, &s.key("zones")).await,
    );
    // Let go after holding: refused again.
    s.hold_zone(z, 1);
    assert_eq!(s.held_fence(z), Some(1));
    s.drop_zone(z);
    let after_drop = s.save_order_record(&order("o_nh", Some(z))).await;
    s.delete_all().await.unwrap();
    assert_eq!(r, Err(StoreError::Fenced(A.into())));
    assert_eq!(sent, (false, false, false), "nothing reached Redis");
    assert_eq!(after_drop, Err(StoreError::Fenced(A.into())));
}

/// A write captured while the node held the zone, still waiting in the writer when the
/// lease moves to another node, does not land.
#[tokio::test]
async fn a_write_in_flight_when_the_lease_moved_is_refused() {
    // The writer lingers before it sends, so the lease moves while the write waits.
    let s = open("in-flight", Duration::from_millis(500));
    let z = zone(A);
    own(&s, z, 3).await;
    let mut rec = order("o_if", Some(z));
    s.save_order_record(&rec).await.unwrap();
    rec.order.version = 2;
    rec.order.status = OrderStatus::Paid;
    let writing = {
        let (s, rec) = (s.clone(), rec.clone());
        tokio::spawn(async move { s.save_order_record(&rec).await })
    };
    // Another node took the zone (a lapsed lease, a higher fence).
    let lease = s.zone_key(z, "lease");
    let mut c = redis::cmd("SET");
    c.arg(&lease).arg("othernode 4");
    let mut direct = s.conn.clone();
    c.query_async::<()>(&mut direct).await.unwrap();
    let r = writing.await.unwrap();
    let stored = s.load_order_record(&rec.order.order_id).await.unwrap();
    s.delete_all().await.unwrap();
    assert_eq!(r, Err(StoreError::Fenced(A.into())));
    assert_eq!(
        stored.map(|r| r.order.version),
        Some(1),
        "the first write only"
    );
}

#[tokio::test]
async fn an_order_of_a_zone_is_loaded_by_its_id_alone() {
    let s = store("by-id");
    let z = zone(B);
    own(&s, z, 1).await;
    let rec = order("o_byid", Some(z));
    s.save_order_record(&rec).await.unwrap();
    // Another store (another node) that holds nothing finds it too.
    let other = RedisStore::open(s.config().clone()).unwrap();
    let found = other.load_order(&rec.order.order_id).await.unwrap();
    let record = other.load_order_record(&rec.order.order_id).await.unwrap();
    let missing = other.load_order(&OrderId::parse("o_none").unwrap()).await;
    s.delete_all().await.unwrap();
    assert_eq!(found, Some(rec.order.clone()));
    assert_eq!(record.and_then(|r| r.zone), Some(z));
    assert_eq!(missing, Ok(None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_reads_the_live_orders_of_every_zone() {
    let s = store("snap-zones");
    let (a, b) = (zone(A), zone(B));
    own(&s, a, 1).await;
    own(&s, b, 2).await;
    s.save_order_record(&order("o_a", Some(a))).await.unwrap();
    s.save_order_record(&order("o_b", Some(b))).await.unwrap();
    s.save_order_record(&order("o_none", None)).await.unwrap();
    let mut done = order("o_a_done", Some(a));
    s.save_order_record(&done).await.unwrap();
    done.order.version = 2;
    done.order.status = OrderStatus::Cancelled;
    s.save_order_record(&done).await.unwrap();
    // A zone listed before any order of it (a merchant opened there).
    let quiet = zone("872a10723ffffff");
    s.add_zone(quiet).await.unwrap();
    let snap = s.load_snapshot().await.unwrap();
    let of_a = s.load_zone_orders(a).await.unwrap();
    let of_quiet = s.load_zone_orders(quiet).await.unwrap();
    let mut zones = s.zones().await.unwrap();
    s.delete_all().await.unwrap();
    let mut ids: Vec<(String, Option<ZoneId>, u64)> = snap
        .orders
        .iter()
        .map(|r| (r.order.order_id.to_string(), r.zone, r.base_version))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            ("o_a".into(), Some(a), 1),
            ("o_b".into(), Some(b), 1),
            ("o_none".into(), None, 1)
        ]
    );
    let of_a: Vec<(String, u64)> = of_a
        .iter()
        .map(|r| (r.order.order_id.to_string(), r.base_version))
        .collect();
    assert_eq!(
        of_a,
        vec![("o_a".into(), 1)],
        "live orders of the zone only"
    );
    assert!(of_quiet.is_empty());
    zones.sort();
    let mut want = vec![a, b, quiet];
    want.sort();
    assert_eq!(zones, want);
}

/// A record written before zones existed (no `zone` field) reads as zone-less, and a
/// zone-less record is written without the field.
#[test]
fn records_without_a_zone_read_and_write_as_before() {
    let rec = order("o_old", None);
    let json = serde_json::to_string(&rec).unwrap();
    assert!(!json.contains("zone"), "{json}");
    let back: OrderRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back.zone, None);
    let zoned = serde_json::to_string(&order("o_new", Some(zone(A)))).unwrap();
    assert!(zoned.contains(&format!(r#""zone":"{A}""#)), "{zoned}");
}

/// Every `order_changed` entry of a zone's stream names its writer and the lease the
/// write was checked against; across a takeover the fences in the stream only rise, and
/// the old holder's write after it is not in the stream at all.
#[tokio::test]
async fn a_zone_stream_names_each_writer_and_its_lease() {
    use crate::events::Event;
    use std::sync::Arc;
    let first = store("stream-lease");
    let second = RedisStore::open(RedisConfig {
        node_id: "second".into(),
        ..first.config().clone()
    })
    .unwrap();
    let z = zone(A);
    let changed = |rec: &OrderRecord| {
        [Event::OrderChanged {
            order: Arc::new(rec.order.clone()),
            previous_status: None,
        }]
    };
    own(&first, z, 1).await;
    let mut rec = order("o_sl", Some(z));
    first
        .save_order_with_events(&rec, &changed(&rec))
        .await
        .unwrap();
    // The second node takes the zone over (fence 2) and moves the order on.
    own(&second, z, 2).await;
    let mut moved = rec.clone();
    moved.base_version = 1;
    moved.order.version = 2;
    second
        .save_order_with_events(&moved, &changed(&moved))
        .await
        .unwrap();
    // The first node, not knowing, writes with its old fence: refused, nothing appended.
    rec.order.version = 2;
    let late = first.save_order_with_events(&rec, &changed(&rec)).await;
    let mut range = redis::cmd("XRANGE");
    range.arg(first.zone_key(z, "events")).arg("-").arg("+");
    let entries: Vec<(String, Vec<String>)> = first.read(range).await.unwrap();
    first.delete_all().await.unwrap();
    assert_eq!(late, Err(StoreError::Fenced(A.into())));
    let tail: Vec<Vec<String>> = entries.into_iter().map(|(_, f)| f[4..].to_vec()).collect();
    let by = |node: &str, lease: &str| {
        vec![
            "writer".to_string(),
            node.to_string(),
            "lease".to_string(),
            lease.to_string(),
        ]
    };
    let one = first.node_id().to_string();
    assert_eq!(
        tail,
        vec![by(&one, &format!("{one} 1")), by("second", "second 2")]
    );
}

/// Another node tails a zone's stream: from its end on, a page at a time, each entry
/// naming the node that wrote it.
#[tokio::test]
async fn a_zones_stream_is_read_after_a_cursor_a_page_at_a_time() {
    use crate::events::Event;
    use std::sync::Arc;
    let s = store("zone_tail");
    let z = zone(A);
    assert_eq!(s.zone_events_end(z).await.unwrap(), STREAM_START);
    own(&s, z, 1).await;
    let changed = |rec: &OrderRecord| {
        [Event::OrderChanged {
            order: Arc::new(rec.order.clone()),
            previous_status: None,
        }]
    };
    let first = order("o_t1", Some(z));
    s.save_order_with_events(&first, &changed(&first))
        .await
        .unwrap();
    let end = s.zone_events_end(z).await.unwrap();
    for id in ["o_t2", "o_t3", "o_t4"] {
        let rec = order(id, Some(z));
        s.save_order_with_events(&rec, &changed(&rec))
            .await
            .unwrap();
    }
    let page = s.zone_events_after(z, &end, 2).await.unwrap();
    let rest = s.zone_events_after(z, &page[1].id, 2).await.unwrap();
    let none = s.zone_events_after(z, &rest[0].id, 2).await.unwrap();
    let from_start = s.zone_events_after(z, STREAM_START, 10).await.unwrap();
    s.delete_all().await.unwrap();
    let ids = |es: &[ZoneEntry]| -> Vec<String> {
        es.iter()
            .map(|e| {
                let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
                v["order"]["order_id"].as_str().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(ids(&page), ["o_t2", "o_t3"]);
    assert_eq!(ids(&rest), ["o_t4"]);
    assert!(none.is_empty());
    assert_eq!(ids(&from_start), ["o_t1", "o_t2", "o_t3", "o_t4"]);
    assert!(page
        .iter()
        .all(|e| e.kind == "order_changed" && e.writer.as_deref() == Some(s.node_id())));
}
