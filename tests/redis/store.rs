//! The store alone, against a real Redis: no server in front.

use crate::harness::*;
use crate::support::{HOME, SHOP};
use std::time::{Duration, Instant};

/// The store alone: compare-and-set between two writers, first-response-wins
/// idempotency, and the recovery snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_compare_and_set_idempotency_and_snapshot() {
    use dispatch_actors::domain::order::{NewOrder, Order, OrderLine, Pickup};
    use dispatch_actors::domain::{CustomerId, GeoPoint, ItemId, MerchantId, OrderId};
    use dispatch_actors::store::{OrderRecord, Store, StoreError, StoredResponse};
    require_redis();
    let (prefix, _cleanup) = fresh_keys();
    let open = || async {
        let s = open_store(MAIN_REDIS, &prefix);
        let t = Instant::now();
        while !s.reachable() {
            assert!(t.elapsed() < Duration::from_secs(5), "redis not reachable");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        s.mark_recovered();
        s
    };
    let (a, b) = (open().await, open().await);
    assert_ne!(a.node_id(), b.node_id());
    let m = MerchantId::generate();
    let mut order = Order::new(
        NewOrder {
            order_id: OrderId::generate(),
            customer_id: CustomerId::generate(),
            merchant_id: m.clone(),
            items: vec![OrderLine {
                item_id: ItemId::generate(),
                name: "x".into(),
                qty: 1,
                price_cents: 100,
            }],
            pickup: Pickup {
                lat: SHOP.0,
                lon: SHOP.1,
                merchant_id: m,
                name: "m".into(),
            },
            dropoff: GeoPoint::new(HOME.0, HOME.1).unwrap(),
        },
        1,
    );
    let rec = |o: &Order, base: u64| {
        let mut r = OrderRecord::bare(o.clone());
        r.base_version = base;
        r
    };
    // A creates (base 0) and moves it to v2.
    a.save_order_record(&rec(&order, 0)).await.unwrap();
    order.version = 2;
    a.save_order_record(&rec(&order, 0)).await.unwrap();
    // B took it over at v1: v2 is stored, so B's v2 conflicts.
    assert!(matches!(
        b.save_order_record(&rec(&order, 1)).await,
        Err(StoreError::Conflict(_))
    ));
    // B took it over at v2 (what is stored): its v3 wins, and now A's v3 conflicts.
    order.version = 3;
    b.save_order_record(&rec(&order, 2)).await.unwrap();
    assert!(matches!(
        a.save_order_record(&rec(&order, 0)).await,
        Err(StoreError::Conflict(_))
    ));
    // A late, older write of the owner is skipped, never stored over a newer one.
    order.version = 2;
    b.save_order_record(&rec(&order, 2)).await.unwrap();
    assert_eq!(
        a.load_order(&order.order_id)
            .await
            .unwrap()
            .unwrap()
            .version,
        3
    );
    // The snapshot has the live order, with the stored version as its base.
    let snap = a.load_snapshot().await.unwrap();
    assert_eq!(snap.orders.len(), 1);
    assert_eq!(snap.orders[0].base_version, 3);
    // Idempotency: the first response stays.
    let r = |body: &str| StoredResponse {
        body_hash: 7,
        status: 201,
        body: body.into(),
    };
    let ttl = Duration::from_secs(60);
    assert_eq!(
        a.put_idempotent("idem:k", r("first"), ttl).await.unwrap(),
        r("first")
    );
    assert_eq!(
        b.put_idempotent("idem:k", r("second"), ttl).await.unwrap(),
        r("first")
    );
    assert_eq!(b.get_idempotent("idem:k").await.unwrap(), Some(r("first")));
    assert_eq!(b.get_idempotent("idem:other").await.unwrap(), None);
}
