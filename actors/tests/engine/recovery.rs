//! Recovery at scale: every restored rider is in the matcher from the start (loaded at
//! once, never dropped for a full mailbox), and a restored rider writes and announces its
//! view only when it differs from the stored one.

use crate::support::*;
use dispatch_actors::domain::merchant::Item;
use dispatch_actors::domain::rider::RiderView;
use dispatch_actors::domain::EscalationId;
use dispatch_actors::store::{OrderRecord, Snapshot, Store, StoreError, StoredResponse};
use parking_lot::Mutex;
use std::sync::Arc;

/// The memory store, counting rider writes by rider.
#[derive(Default)]
struct CountingStore {
    inner: MemoryStore,
    rider_saves: Mutex<Vec<RiderId>>,
}

#[async_trait::async_trait]
impl Store for CountingStore {
    async fn save_order_record(&self, rec: &OrderRecord) -> Result<(), StoreError> {
        self.inner.save_order_record(rec).await
    }
    async fn load_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        self.inner.load_order(id).await
    }
    async fn load_order_record(&self, id: &OrderId) -> Result<Option<OrderRecord>, StoreError> {
        self.inner.load_order_record(id).await
    }
    async fn save_rider(&self, rider: &RiderView) -> Result<(), StoreError> {
        self.rider_saves.lock().push(rider.rider_id.clone());
        self.inner.save_rider(rider).await
    }
    async fn save_merchant(&self, m: &Merchant, items: &[Item]) -> Result<(), StoreError> {
        self.inner.save_merchant(m, items).await
    }
    async fn save_escalation(
        &self,
        e: &dispatch_actors::domain::escalation::Escalation,
    ) -> Result<(), StoreError> {
        self.inner.save_escalation(e).await
    }
    async fn load_escalation(
        &self,
        id: &EscalationId,
    ) -> Result<Option<dispatch_actors::domain::escalation::Escalation>, StoreError> {
        self.inner.load_escalation(id).await
    }
    async fn put_idempotent(
        &self,
        key: &str,
        resp: StoredResponse,
        ttl: Duration,
    ) -> Result<StoredResponse, StoreError> {
        self.inner.put_idempotent(key, resp, ttl).await
    }
    async fn get_idempotent(&self, key: &str) -> Result<Option<StoredResponse>, StoreError> {
        self.inner.get_idempotent(key).await
    }
    async fn healthy(&self) -> bool {
        true
    }
    async fn save_device(
        &self,
        device: &dispatch_actors::domain::DeviceId,
        rider: &RiderId,
    ) -> Result<(), StoreError> {
        self.inner.save_device(device, rider).await
    }
    async fn delete_device(
        &self,
        device: &dispatch_actors::domain::DeviceId,
    ) -> Result<(), StoreError> {
        self.inner.delete_device(device).await
    }
}

/// An idle rider's stored view at `at`, heard from at `ts_ms`.
fn idle_view(i: usize, at: GeoPoint, ts_ms: u64) -> RiderView {
    RiderView {
        rider_id: RiderId::parse(&format!("r_restored{i}")).unwrap(),
        name: format!("rider {i}"),
        location: Some(at),
        status: RiderStatus::Idle,
        order_ids: Vec::new(),
        last_seen_ms: Some(ts_ms),
        offer: None,
    }
}

/// More riders than the matcher's mailbox holds: one update each, sent as every rider
/// started, used to overflow it and leave riders out of the index until they moved.
#[actix_rt::test]
async fn every_restored_rider_is_in_the_matcher_however_many() {
    let n = dispatch_actors::actors::matcher::MAILBOX_CAPACITY + 3_000;
    let store = Arc::new(CountingStore::default());
    let engine = start_on(cfg(), store.clone());
    let now = engine.now_ms();
    let riders = (0..n)
        .map(|i| {
            idle_view(
                i,
                centre().destination((i % 360) as f64, 10.0 + (i % 500) as f64),
                now,
            )
        })
        .collect();
    let restored = engine
        .recover(Snapshot {
            riders,
            ..Snapshot::default()
        })
        .await;
    assert_eq!(restored.riders, n);
    settle().await;
    let near = engine
        .riders_nearby(centre(), 1_000.0, n + 1)
        .await
        .unwrap();
    assert_eq!(near.len(), n, "every restored rider is in the matcher");
    assert!(
        store.rider_saves.lock().is_empty(),
        "an unchanged rider is not written back"
    );
}

/// The stored view of a rider can lag its orders (the order was written, then the process
/// died before the rider's view): that rider's view is written and announced; the others
/// are not, and are offered work at once.
#[actix_rt::test]
async fn a_restored_rider_writes_and_announces_its_view_only_when_it_changed() {
    let first = start(cfg());
    let mut holder = TestRider::online_at(&first, "holder", north(300.0)).await;
    let stale_view = holder.view().await;
    let id = accepted_order(&first).await.order_id;
    holder.accept_next().await;
    let rec = first.store().load_order_record(&id).await.unwrap().unwrap();
    let free = idle_view(1, north(600.0), first.now_ms());

    let store = Arc::new(CountingStore::default());
    let again = Engine::start(cfg(), store.clone(), Clock::starting_at(first.now_ms()));
    let mut events = again.subscribe();
    again
        .recover(Snapshot {
            orders: vec![OrderRecord {
                base_version: rec.order.version,
                ..rec
            }],
            riders: vec![stale_view, free.clone()],
            ..Snapshot::default()
        })
        .await;
    settle().await;
    assert_eq!(*store.rider_saves.lock(), vec![holder.id.clone()]);
    let mut announced = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let Event::RiderChanged { rider } = ev {
            announced.push((rider.rider_id.clone(), rider.status));
        }
    }
    assert_eq!(announced, vec![(holder.id.clone(), RiderStatus::Busy)]);

    // The free rider is in the matcher: a new order is offered to it.
    let outbox = Outbox::new(256);
    again
        .attach_rider(&free.rider_id, outbox.clone())
        .await
        .unwrap();
    let mut rider = TestRider::from_parts(&again, free.rider_id.clone(), outbox);
    let order = accepted_order(&again).await.order_id;
    settle().await;
    assert_eq!(rider.offers_for(&order).len(), 1);
}

/// Riders restored chunk by chunk wait in the matcher to be placed in bulk; a rider that
/// moves meanwhile is found where it went, not where it was restored.
#[actix_rt::test]
async fn a_rider_moving_while_the_city_is_restored_is_found_where_it_went() {
    use dispatch_actors::store::SnapshotHead;
    let engine = start(cfg());
    let now = engine.now_ms();
    let (mut rec, orders) = engine
        .recover_head(SnapshotHead {
            riders: 2_000,
            ..SnapshotHead::default()
        })
        .await;
    let chunk = |from: usize| -> Vec<_> {
        (from..from + 1_000)
            .map(|i| (idle_view(i, north(100.0 + i as f64 / 10.0), now), None))
            .collect()
    };
    engine.recover_riders(&mut rec, chunk(0));
    settle().await;
    let mover = RiderId::parse("r_restored7").unwrap();
    // 5 km in 400 s: a plausible move.
    advance(400.0).await;
    let away = centre().destination(180.0, 5_000.0);
    let fix = fix_at(away, engine.now_ms());
    engine
        .rider_command(&mover, RiderCommand::Location(fix))
        .unwrap();
    settle().await;
    engine.recover_riders(&mut rec, chunk(1_000));
    engine.recover_orders(rec, orders);
    settle().await;
    let near = engine
        .riders_nearby(centre(), 1_000.0, 5_000)
        .await
        .unwrap();
    assert_eq!(near.len(), 1_999);
    assert!(near.iter().all(|(n, _)| n.rider_id != mover));
    let there = engine.riders_nearby(away, 100.0, 10).await.unwrap();
    assert_eq!(there.len(), 1);
    assert_eq!(there[0].0.rider_id, mover);
}
