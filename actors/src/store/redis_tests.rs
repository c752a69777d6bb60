//! The Redis store against a real Redis at 127.0.0.1:6379 (a key prefix of its own per
//! test).

use super::*;
use crate::domain::order::tests::sample_order;

fn store(test: &str) -> RedisStore {
    let prefix = format!("test:{test}:{}:", rand::random::<u64>());
    RedisStore::open(RedisConfig {
        prefix,
        ..RedisConfig::default()
    })
    .expect("redis store")
}

/// Two changes of one order that leave `version` alone (an offer, then its expiry) are
/// captured in order but reach the writer the other way round, in one pipeline: the later
/// capture must survive.
#[tokio::test]
async fn of_two_racing_writes_of_one_order_the_later_capture_survives() {
    let s = store("seq");
    let mut earlier = OrderRecord::bare(sample_order());
    earlier.order.version = 3;
    earlier.seq = 7;
    earlier.radius_m = 3000.0;
    let mut later = earlier.clone();
    later.seq = 8;
    later.radius_m = 6000.0;
    // Both are queued before the writer runs, the later capture first: one pipeline.
    let (a, b) = tokio::join!(s.save_order_record(&later), s.save_order_record(&earlier));
    assert_eq!((a, b), (Ok(()), Ok(())), "a skipped write is not an error");
    let id = earlier.order.order_id.clone();
    let stored = s.load_order_record(&id).await.unwrap().unwrap();
    assert_eq!((stored.seq, stored.radius_m), (8, 6000.0));
    // A newer version always wins over an older one, whatever its sequence.
    let mut next = later.clone();
    next.order.version = 4;
    next.seq = 9;
    s.save_order_record(&next).await.unwrap();
    s.save_order_record(&later).await.unwrap();
    let stored = s.load_order_record(&id).await.unwrap().unwrap();
    assert_eq!((stored.order.version, stored.seq), (4, 9));
}

/// `flush` (graceful shutdown) returns only once every position recorded before it is in
/// Redis, also when the flusher has already taken them and its pipeline is on its way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_for_the_position_pipeline_in_flight() {
    use crate::domain::{GeoPoint, RiderId};
    use std::time::Duration;
    let s = store("flush");
    while !s.reachable() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Enough riders that writing them takes a while after the flusher has taken them.
    let n = 50_000;
    for i in 0..n {
        let r = RiderId::parse(&format!("r_{i}")).unwrap();
        let p = GeoPoint::new(31.0 + (i % 1000) as f64 * 1e-4, 121.47).unwrap();
        s.record_position(&r, p, 1);
    }
    // Taken by the flusher: from here on they are only in its pipeline.
    while !s.positions.lock().map.is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let flushed = s.flush(Duration::from_secs(10)).await;
    let mut c = redis::cmd("HLEN");
    c.arg(s.key("positions"));
    let written: usize = s.read(c).await.unwrap();
    s.delete_all().await.unwrap();
    assert!(flushed, "flush gave up");
    assert_eq!(
        written, n,
        "flush returned before the positions were written"
    );
}

/// Tracking-app devices are in the snapshot a restart reads, and a revoked one is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_are_in_the_snapshot_until_revoked() {
    use crate::domain::{DeviceId, RiderId};
    let s = store("devices");
    let rider = RiderId::parse("r_dev1").unwrap();
    let (kept, revoked) = (DeviceId::generate(), DeviceId::generate());
    s.save_device(&kept, &rider).await.unwrap();
    s.save_device(&revoked, &rider).await.unwrap();
    s.delete_device(&revoked).await.unwrap();
    let snap = s.load_snapshot().await.unwrap();
    s.delete_all().await.unwrap();
    assert_eq!(
        snap.devices,
        vec![(kept.expose().to_string(), "r_dev1".to_string())]
    );
}

/// An order's `order_changed` events land in the stream in the same script as its record:
/// with a stored write, and not at all with a write refused as a conflict.
#[tokio::test]
async fn order_events_ride_with_the_order_write() {
    use crate::events::Event;
    use std::sync::Arc;
    let prefix = format!("test:order-events:{}:", rand::random::<u64>());
    let open = || {
        RedisStore::open(RedisConfig {
            prefix: prefix.clone(),
            ..RedisConfig::default()
        })
        .expect("redis store")
    };
    let (a, b) = (open(), open());
    let mut rec = OrderRecord::bare(sample_order());
    rec.order.version = 1;
    let created = Event::OrderChanged {
        order: Arc::new(rec.order.clone()),
        previous_status: None,
    };
    a.save_order_with_events(&rec, &[created]).await.unwrap();
    // Another writer that took the order over at version 0 is refused: no event either.
    let mut stale = rec.clone();
    stale.order.version = 2;
    let moved = Event::OrderChanged {
        order: Arc::new(stale.order.clone()),
        previous_status: Some(rec.order.status),
    };
    let refused = b.save_order_with_events(&stale, &[moved]).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let client = redis::Client::open("redis://127.0.0.1:6379/0").unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(format!("{prefix}events"))
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        entries.len(),
        1,
        "one event, from the stored write: {entries:?}"
    );
    let fields = &entries[0].1;
    assert_eq!(
        fields[0..2],
        ["type".to_string(), "order_changed".to_string()]
    );
    let data: serde_json::Value = serde_json::from_str(&fields[3]).unwrap();
    assert_eq!(data["order"]["version"], 1);
    assert!(data["previous_status"].is_null());
}

/// Webhooks come back after a restart: subscriptions, pending deliveries with their
/// attempts, dead letters; a delivery is in one list at a time, and a deleted
/// subscription takes its deliveries with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_and_their_deliveries_are_in_the_webhook_snapshot() {
    use crate::domain::{DeliveryId, WebhookEventId, WebhookId};
    use crate::store::{DeliveryRecord, WebhookRecord};
    let s = store("webhooks");
    let hook = |id: &str| WebhookRecord {
        id: WebhookId::parse(id).unwrap(),
        url: "https://example.com/hook".into(),
        events: vec!["order.status_changed".into()],
        secret: "whsec_test".into(),
        created_ms: 1,
    };
    let delivery = |id: &str, hook: &str, seq: u64| DeliveryRecord {
        id: DeliveryId::parse(id).unwrap(),
        webhook_id: WebhookId::parse(hook).unwrap(),
        event_id: WebhookEventId::generate(),
        event_type: "order.status_changed".into(),
        body: "{}".into(),
        seq,
        created_ms: 2,
        attempts: 0,
        next_attempt_ms: 2,
        last_error: None,
        dead_ms: None,
    };
    s.save_webhook(&hook("wh_a")).await.unwrap();
    s.save_webhook(&hook("wh_b")).await.unwrap();
    let mut retried = delivery("whd_1", "wh_a", 1);
    s.save_delivery(&retried).await.unwrap();
    retried.attempts = 2;
    retried.last_error = Some("HTTP 500".into());
    s.save_delivery(&retried).await.unwrap();
    let mut dead = delivery("whd_2", "wh_a", 2);
    s.save_delivery(&dead).await.unwrap();
    dead.dead_ms = Some(9);
    s.save_delivery(&dead).await.unwrap();
    let done = delivery("whd_3", "wh_a", 3);
    s.save_delivery(&done).await.unwrap();
    s.delete_deliveries(std::slice::from_ref(&done.id))
        .await
        .unwrap();
    let of_b = delivery("whd_4", "wh_b", 4);
    s.save_delivery(&of_b).await.unwrap();
    s.delete_webhook(&of_b.webhook_id, std::slice::from_ref(&of_b.id))
        .await
        .unwrap();
    let snap = s.load_webhooks().await.unwrap();
    s.delete_all().await.unwrap();
    assert_eq!(snap.webhooks, vec![hook("wh_a")]);
    assert_eq!(snap.pending, vec![retried]);
    assert_eq!(snap.dead, vec![dead]);
}
