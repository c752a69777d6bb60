//! Two engines joined by a mesh on the real Redis at 127.0.0.1:6379: an order on one,
//! its rider on the other, carried from assignment to delivery by messages between them.

use crate::actors::engine::Engine;
use crate::clock::Clock;
use crate::config::{EngineConfig, Policy};
use crate::domain::gps::RawFix;
use crate::domain::order::{OrderCommand, OrderStatus};
use crate::domain::{CustomerId, GeoPoint, ItemId, MerchantId, RiderId};
use crate::mesh::{Mesh, MeshConfig};
use crate::outbox::Outbox;
use crate::protocol::{RiderCommand, RiderNotice};
use crate::store::MemoryStore;
use std::sync::Arc;
use std::time::Duration;

async fn joined(prefix: &str, node: &str) -> Engine {
    joined_on(prefix, node, Arc::new(MemoryStore::new())).await
}

async fn joined_on(prefix: &str, node: &str, store: Arc<dyn crate::store::Store>) -> Engine {
    let mut cfg = EngineConfig::for_tests();
    cfg.dispatch.policy = Policy::Nearest;
    let engine = Engine::start(cfg, store, Clock::system());
    let conn = || async {
        redis::Client::open("redis://127.0.0.1:6379/0")
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("these tests need Redis on 127.0.0.1:6379")
    };
    let mesh = Mesh::start(
        MeshConfig::new(prefix, node),
        conn().await,
        conn().await,
        Arc::new(engine.node_calls()),
    )
    .await
    .unwrap();
    assert!(engine.join(Arc::new(mesh)));
    engine
}

/// A merchant at `shop` (prep 0) with one item, made on `engine`: its id and the item's.
async fn merchant_on(engine: &Engine, shop: GeoPoint) -> (MerchantId, ItemId) {
    let m = engine
        .create_merchant("Noodle Bar".into(), shop, Some(0))
        .await
        .unwrap();
    let item = engine
        .add_item(&m.merchant_id, "Noodles".into(), 1250)
        .await
        .unwrap();
    (m.merchant_id, item.item_id)
}

/// A rider made on `engine`, its session attached, online at `at`: its id and outbox.
async fn rider_on(engine: &Engine, at: GeoPoint) -> (RiderId, Outbox<RiderNotice>) {
    let rider = engine.create_rider("Ann".into()).await.unwrap().rider_id;
    let outbox = Outbox::new(256);
    engine.attach_rider(&rider, outbox.clone()).await.unwrap();
    engine
        .rider_command(&rider, RiderCommand::SetOnline(true))
        .unwrap();
    let fix = RawFix {
        lat: Some(at.lat()),
        lon: Some(at.lon()),
        ts_ms: Some(engine.now_ms() as f64),
        ..Default::default()
    };
    engine
        .rider_command(&rider, RiderCommand::Location(fix))
        .unwrap();
    (rider, outbox)
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 3 s");
}

#[actix_rt::test]
async fn an_order_on_one_node_is_delivered_by_a_rider_on_another() {
    let prefix = format!("test:remote:{}:", rand::random::<u64>());
    let a = joined(&prefix, "a").await;
    let b = joined(&prefix, "b").await;
    let shop = GeoPoint::new(31.23, 121.47).unwrap();

    // The order lives on A.
    let (merchant, item) = merchant_on(&a, shop).await;
    let o = a
        .create_order(
            CustomerId::parse("c_alice").unwrap(),
            &merchant,
            vec![(item.clone(), 1)],
            shop.destination(90.0, 2000.0),
        )
        .await
        .unwrap();
    let id = o.order_id.clone();
    a.order_command(
        &id,
        OrderCommand::Pay {
            payment_ref: "p1".into(),
        },
    )
    .await
    .unwrap();
    a.accept_order(&id, Some(0)).await.unwrap();

    // The rider lives on B, online near the shop.
    let (rider, outbox) = rider_on(&b, shop).await;

    // Each knows where the other's actor lives.
    a.place_rider(&rider, Some("b".into()));
    b.place_order(&id, Some("a".into()));

    // A assigns: it asks B whether the rider may take it, and B's rider hears it.
    let assigned = a.assign(&id, &rider).await.unwrap();
    assert_eq!(assigned.status, OrderStatus::Assigned);
    assert_eq!(assigned.rider_id.as_ref(), Some(&rider));
    let mut seen = Vec::new();
    until("the rider hears it was assigned", || {
        seen.extend(outbox.drain());
        seen.iter()
            .any(|n| matches!(n, RiderNotice::Assigned { order } if order.order_id == id))
    })
    .await;
    // B reads the order from A.
    assert_eq!(b.order(&id).await.unwrap().status, OrderStatus::Assigned);

    // The rider's reports go from B to the order on A, and the answers come back.
    b.rider_command(
        &rider,
        RiderCommand::PickedUp {
            order_id: id.clone(),
        },
    )
    .unwrap();
    until("picked up", || {
        seen.extend(outbox.drain());
        seen.iter().any(|n| {
            matches!(n, RiderNotice::OrderUpdated { order }
                if order.order_id == id && order.status == OrderStatus::PickedUp)
        })
    })
    .await;
    b.rider_command(
        &rider,
        RiderCommand::Delivered {
            order_id: id.clone(),
        },
    )
    .unwrap();
    until("delivered", || {
        seen.extend(outbox.drain());
        seen.iter().any(|n| {
            matches!(n, RiderNotice::OrderUpdated { order }
                if order.order_id == id && order.status == OrderStatus::Delivered)
        })
    })
    .await;
    assert_eq!(a.order(&id).await.unwrap().status, OrderStatus::Delivered);
    // And the rider is free again on B.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(b.rider(&rider).await.unwrap().order_ids.is_empty());
}

/// Dispatch across nodes: B's rider is in A's matcher (the fleet), so A's order offers
/// itself to it; the rider accepts on B and the claim wins on A.
#[actix_rt::test]
async fn an_order_offers_itself_to_a_rider_living_on_another_node() {
    let prefix = format!("test:remote:{}:", rand::random::<u64>());
    let a = joined(&prefix, "a").await;
    let b = joined(&prefix, "b").await;
    a.set_peers(["b".into()]);
    b.set_peers(["a".into()]);
    let shop = GeoPoint::new(31.23, 121.47).unwrap();

    let (rider, outbox) = rider_on(&b, shop).await;
    // A's matcher hears of it within a flush or two, and A reads the rider from B.
    let mut near = Vec::new();
    for _ in 0..100 {
        near = a.riders_nearby(shop, 1000.0, 5).await.unwrap();
        if !near.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(near.len(), 1, "A's matcher holds B's rider");
    assert_eq!(near[0].1.rider_id, rider);

    let (merchant, item) = merchant_on(&a, shop).await;
    let o = a
        .create_order(
            CustomerId::parse("c_bob").unwrap(),
            &merchant,
            vec![(item.clone(), 1)],
            shop.destination(90.0, 2000.0),
        )
        .await
        .unwrap();
    let id = o.order_id.clone();
    b.place_order(&id, Some("a".into()));
    a.order_command(
        &id,
        OrderCommand::Pay {
            payment_ref: "p2".into(),
        },
    )
    .await
    .unwrap();
    a.accept_order(&id, Some(0)).await.unwrap();

    let mut seen = Vec::new();
    let mut offer = None;
    until("the rider on B is offered A's order", || {
        seen.extend(outbox.drain());
        offer = seen.iter().find_map(|n| match n {
            RiderNotice::Offer(o) if o.order_id == id => Some(o.offer_id.clone()),
            _ => None,
        });
        offer.is_some()
    })
    .await;
    b.rider_command(
        &rider,
        RiderCommand::Accept {
            offer_id: offer.unwrap(),
        },
    )
    .unwrap();
    until("assigned", || {
        seen.extend(outbox.drain());
        seen.iter()
            .any(|n| matches!(n, RiderNotice::Assigned { order } if order.order_id == id))
    })
    .await;
    let on_a = a.order(&id).await.unwrap();
    assert_eq!(on_a.status, OrderStatus::Assigned);
    assert_eq!(on_a.rider_id.as_ref(), Some(&rider));

    // B goes away: A's matcher forgets its riders.
    a.set_peers(Vec::<Arc<str>>::new());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(a.riders_nearby(shop, 1000.0, 5).await.unwrap().is_empty());
    // B is back: A hears B's whole fleet again.
    a.set_peers(["b".into()]);
    for _ in 0..100 {
        if !a.riders_nearby(shop, 1000.0, 5).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.riders_nearby(shop, 1000.0, 5).await.unwrap().len(), 1);

    // The rider's socket opens on A: its actor moves there with the order in hand, and
    // its reports reach the order from there.
    a.take_rider(&rider).await.unwrap();
    let view = a.rider(&rider).await.unwrap();
    assert_eq!(view.order_ids, vec![id.clone()]);
    assert!(!b.hosts_rider(&rider), "B's actor stopped");
    let moved = Outbox::new(256);
    a.attach_rider(&rider, moved.clone()).await.unwrap();
    a.rider_command(
        &rider,
        RiderCommand::PickedUp {
            order_id: id.clone(),
        },
    )
    .unwrap();
    let mut seen_a = Vec::new();
    until("picked up through A", || {
        seen_a.extend(moved.drain());
        seen_a.iter().any(|n| {
            matches!(n, RiderNotice::OrderUpdated { order }
                if order.order_id == id && order.status == OrderStatus::PickedUp)
        })
    })
    .await;
}

/// Zone ownership: an order created on a node that does not hold its merchant's zone is
/// created on the holder; when the zone moves, the new holder rebuilds it from the store
/// and calls follow it.
#[actix_rt::test]
async fn orders_live_on_the_node_holding_their_zone_and_follow_it() {
    use crate::actors::engine::Zones;
    use crate::cluster::keeper::HeldZones;
    use crate::domain::Zoning;
    use crate::store::redis::Leases;
    use crate::store::Store;
    use tokio::sync::watch;

    let prefix = format!("test:zones:{}:", rand::random::<u64>());
    // One store for both, as Redis would be.
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let a = joined_on(&prefix, "a", store.clone()).await;
    let b = joined_on(&prefix, "b", store.clone()).await;
    a.set_peers(["b".into()]);
    b.set_peers(["a".into()]);
    let shop = GeoPoint::new(31.23, 121.47).unwrap();
    let zoning = Zoning::new(7).unwrap();
    let zone = zoning.zone_of(shop);
    let conn = redis::Client::open("redis://127.0.0.1:6379/0")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let leases = Arc::new(Leases::new(conn, &prefix));
    let fence = leases.acquire(zone, "a", 60_000).await.unwrap().unwrap();
    let (held_a, a_holds) = watch::channel(HeldZones::from([(zone, fence)]));
    let (held_b, b_holds) = watch::channel(HeldZones::new());
    for (engine, held) in [(&a, a_holds), (&b, b_holds)] {
        assert!(engine.enable_zones(Zones {
            zoning,
            held,
            holders: leases.clone(),
        }));
    }

    // A merchant made on A reaches B.
    let (merchant, item) = merchant_on(&a, shop).await;
    for _ in 0..100 {
        if b.items(&merchant).await.is_ok_and(|i| i.len() == 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.items(&merchant).await.unwrap().len(), 1);

    // Ordered through B: made on A, the zone's holder.
    let o = b
        .create_order(
            CustomerId::parse("c_carol").unwrap(),
            &merchant,
            vec![(item.clone(), 1)],
            shop.destination(90.0, 2000.0),
        )
        .await
        .unwrap();
    let id = o.order_id.clone();
    assert!(a.hosts_order(&id), "the order lives on A");
    assert!(!b.hosts_order(&id));
    // Commands through either node reach it.
    let paid = b
        .order_command(
            &id,
            OrderCommand::Pay {
                payment_ref: "p3".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(paid.status, OrderStatus::Paid);
    assert_eq!(a.order(&id).await.unwrap().status, OrderStatus::Paid);

    // The zone moves to B: A lets go, B takes the lease and rebuilds the zone's orders.
    held_a.send_replace(HeldZones::new());
    a.drop_zone(zone).await;
    assert!(leases.release(zone, "a", fence).await.unwrap());
    let fence_b = leases.acquire(zone, "b", 60_000).await.unwrap().unwrap();
    assert!(fence_b > fence);
    held_b.send_replace(HeldZones::from([(zone, fence_b)]));
    let rec = store.load_order_record(&id).await.unwrap().unwrap();
    assert_eq!(b.adopt_zone(zone, vec![rec.clone()]), 1);
    assert_eq!(b.adopt_zone(zone, vec![rec]), 0, "adopted once");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!a.hosts_order(&id), "A's actor stopped");
    // A's calls now go to B.
    let accepted = a.accept_order(&id, Some(0)).await.unwrap();
    assert_eq!(accepted.status, OrderStatus::Accepted);
    assert_eq!(b.order(&id).await.unwrap().status, OrderStatus::Accepted);
}

/// Riders on every dashboard: B hears the views of A's riders (only A's: its own stay on
/// its event bus), and hears A leave.
#[actix_rt::test]
async fn a_node_hears_the_views_of_another_nodes_riders_and_its_leaving() {
    use crate::actors::roster::RidersElsewhere;
    use crate::domain::rider::RiderStatus;
    let prefix = format!("test:remote:{}:", rand::random::<u64>());
    let a = joined(&prefix, "a").await;
    let b = joined(&prefix, "b").await;
    let mut heard = b.riders_elsewhere();
    a.set_peers(["b".into()]);
    b.set_peers(["a".into()]);
    let at = GeoPoint::new(31.23, 121.47).unwrap();
    let (on_a, _outbox) = rider_on(&a, at).await;
    let (on_b, _outbox_b) = rider_on(&b, at).await;
    let idle = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match heard.recv().await.unwrap() {
                RidersElsewhere::Views { node, views } => {
                    assert_eq!(&*node, "a");
                    assert!(views.iter().all(|v| v.rider_id != on_b), "B's own rider");
                    if let Some(v) = views.iter().find(|v| v.rider_id == on_a) {
                        if v.status == RiderStatus::Idle && v.location.is_some() {
                            return v.clone();
                        }
                    }
                }
                other => panic!("unexpected: {other:?}"),
            }
        }
    })
    .await
    .expect("A's rider on B within 3 s");
    assert_eq!(idle.location, Some(at));
    // A leaves B's membership.
    b.set_peers(Vec::<Arc<str>>::new());
    let left = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            if let RidersElsewhere::Left { node } = heard.recv().await.unwrap() {
                return node;
            }
        }
    })
    .await
    .expect("A's leaving within 3 s");
    assert_eq!(&*left, "a");
}

/// Escalations on every node: B lists what A's desk raised, resolves it through A's desk,
/// and forgets A's escalations once A leaves.
#[actix_rt::test]
async fn a_node_lists_and_resolves_another_nodes_escalations() {
    use crate::actors::desk::Raise;
    use crate::domain::escalation::{EscalationKind, ResolvedBy};
    use crate::error::EngineError;
    let prefix = format!("test:remote:{}:", rand::random::<u64>());
    let a = joined(&prefix, "a").await;
    let b = joined(&prefix, "b").await;
    a.set_peers(["b".into()]);
    b.set_peers(["a".into()]);
    let mut heard = b.escalations_elsewhere();
    a.desk()
        .send(Raise {
            kind: EscalationKind::NoRider,
            order_id: Some(crate::domain::OrderId::generate()),
            rider_id: None,
            message: "no rider".into(),
        })
        .await
        .unwrap();
    let raised = tokio::time::timeout(Duration::from_secs(3), heard.recv())
        .await
        .expect("A's escalation on B within 3 s")
        .unwrap();
    assert_eq!(&*raised.node, "a");
    let id = raised.escalations[0].escalation_id.clone();
    let open = b.escalations(true).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].escalation_id, id);

    // Resolved through B, on A's desk.
    let done = b
        .resolve_escalation(id.clone(), Some("called".into()))
        .await
        .unwrap();
    assert_eq!(done.resolved_by, Some(ResolvedBy::Dispatcher));
    assert!(a.escalations(true).await.unwrap().is_empty());
    assert!(b.escalations(true).await.unwrap().is_empty());
    assert_eq!(b.escalations(false).await.unwrap(), vec![done.clone()]);

    // A leaves: B neither lists nor knows its escalations.
    b.set_peers(Vec::<Arc<str>>::new());
    assert!(b.escalations(false).await.unwrap().is_empty());
    assert!(matches!(
        b.resolve_escalation(id, None).await,
        Err(EngineError::NotFound(_))
    ));
}
