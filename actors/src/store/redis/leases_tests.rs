//! The lease scripts, membership and the zones registry against a real Redis (a prefix of
//! each test's own), and against a real Redis Cluster.

use super::*;
use crate::cluster::test_redis::{clean, manager, prefix, shared, OwnCluster, SHARED_URL};
use crate::domain::{GeoPoint, Zoning};
use std::time::{Duration, Instant};

fn zone(i: usize) -> ZoneId {
    let p = GeoPoint::new(31.0 + i as f64 * 0.05, 121.4).unwrap();
    Zoning::new(7).unwrap().zone_of(p)
}

/// Waits (polling Redis, bounded) until `zone`'s lease has lapsed.
async fn until_lapsed<C: ConnectionLike + Clone + Send + Sync + 'static>(l: &Leases<C>, z: ZoneId) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while l.holders([z]).await.unwrap().contains_key(&z) {
        assert!(Instant::now() < deadline, "the lease never lapsed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The lease life cycle every backend must give: free → taken with fence 1 → kept by its
/// holder, refused to others → renewed only with the exact fence → released only by its
/// holder → taken again with a higher fence; a lapsed lease's old holder can neither renew
/// nor release it once another holds it.
async fn life_cycle<C: ConnectionLike + Clone + Send + Sync + 'static>(l: &Leases<C>) {
    let (z, other) = (zone(0), zone(1));
    assert_eq!(l.acquire(z, "a", 5000).await, Ok(Some(1)));
    assert_eq!(l.acquire(z, "a", 5000).await, Ok(Some(1)), "already a's");
    assert_eq!(l.acquire(z, "b", 5000).await, Ok(None), "a holds it");
    assert_eq!(
        l.acquire(other, "b", 5000).await,
        Ok(Some(1)),
        "a fence per zone"
    );
    assert_eq!(l.renew(z, "a", 1, 5000).await, Ok(true));
    assert_eq!(l.renew(z, "a", 2, 5000).await, Ok(false), "not a's fence");
    assert_eq!(l.renew(z, "b", 1, 5000).await, Ok(false), "not b's lease");
    let shown = l.holders([z, other, zone(2)]).await.unwrap();
    assert_eq!(shown.len(), 2, "zone 2 has no lease: {shown:?}");
    assert_eq!(shown[&z], Holder::parse("a 1").unwrap());
    assert_eq!(shown[&other], Holder::parse("b 1").unwrap());
    assert_eq!(l.release(z, "b", 1).await, Ok(false));
    assert_eq!(l.release(z, "a", 2).await, Ok(false));
    assert_eq!(l.release(z, "a", 1).await, Ok(true));
    assert_eq!(l.acquire(z, "b", 5000).await, Ok(Some(2)), "a higher fence");

    // A lease that lapses: its holder's renewal and release come too late.
    assert_eq!(l.renew(z, "b", 2, 150).await, Ok(true));
    until_lapsed(l, z).await;
    assert_eq!(l.renew(z, "b", 2, 5000).await, Ok(false), "lapsed");
    assert_eq!(l.acquire(z, "c", 5000).await, Ok(Some(3)));
    assert_eq!(l.renew(z, "b", 2, 5000).await, Ok(false), "a stale holder");
    assert_eq!(l.release(z, "b", 2).await, Ok(false), "a stale holder");
    assert_eq!(
        l.holders([z]).await.unwrap()[&z],
        Holder::parse("c 3").unwrap()
    );
}

#[tokio::test]
async fn a_lease_is_taken_renewed_and_released_with_rising_fences() {
    let p = prefix("lease_cycle");
    let l = shared(&p).await;
    life_cycle(&l).await;
    // The keys are the zone's, under the prefix.
    let z = zone(0);
    let mut c = manager(SHARED_URL).await;
    let v: String = redis::cmd("GET")
        .arg(format!("{p}{{z:{z}}}:lease"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v, "c 3");
    let f: u64 = redis::cmd("GET")
        .arg(format!("{p}{{z:{z}}}:fence"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(f, 3);
    clean(&p).await;
}

#[tokio::test]
async fn live_nodes_are_those_whose_announcement_stands() {
    let p = prefix("nodes");
    let l = shared(&p).await;
    l.announce("n-a", "10.0.0.1:8080", 5000).await.unwrap();
    l.announce("n-b", "10.0.0.2:8080", 100).await.unwrap();
    l.announce("n-c", "", 5000).await.unwrap();
    let live = l.live_nodes().await.unwrap();
    assert_eq!(live.keys().collect::<Vec<_>>(), ["n-a", "n-b", "n-c"]);
    assert_eq!(live["n-a"], "10.0.0.1:8080");
    l.withdraw("n-c").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while l.live_nodes().await.unwrap().contains_key("n-b") {
        assert!(Instant::now() < deadline, "n-b's announcement never lapsed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        l.live_nodes().await.unwrap().keys().collect::<Vec<_>>(),
        ["n-a"]
    );
    // The dead one left the set too, and comes back when it announces again.
    let mut c = manager(SHARED_URL).await;
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{p}nodes"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(members, ["n-a"]);
    l.announce("n-b", "", 5000).await.unwrap();
    assert!(l.live_nodes().await.unwrap().contains_key("n-b"));
    clean(&p).await;
}

#[tokio::test]
async fn the_zones_registry_lists_each_zone_once() {
    let p = prefix("zones");
    let l = shared(&p).await;
    assert!(l.zones().await.unwrap().is_empty());
    l.add_zones(&[zone(0), zone(1)]).await.unwrap();
    l.add_zones(&[zone(1), zone(2)]).await.unwrap();
    l.add_zones(&[]).await.unwrap();
    let want: BTreeSet<ZoneId> = [zone(0), zone(1), zone(2)].into();
    assert_eq!(l.zones().await.unwrap(), want);
    clean(&p).await;
}

#[tokio::test]
async fn the_store_hands_out_leases_under_its_prefix() {
    let p = prefix("store_leases");
    let store = RedisStore::open(crate::store::redis::RedisConfig {
        prefix: p.clone(),
        ..Default::default()
    })
    .unwrap();
    let l = store.leases();
    assert_eq!(l.acquire(zone(0), store.node_id(), 5000).await, Ok(Some(1)));
    let other = shared(&p).await;
    assert_eq!(
        other.holders([zone(0)]).await.unwrap()[&zone(0)].node,
        store.node_id()
    );
    clean(&p).await;
}

/// The same scripts, membership and registry on a Redis Cluster of three masters: every
/// command names keys of one slot, and the zones used sit on different masters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_work_on_a_redis_cluster() {
    let cluster = OwnCluster::start();
    let conn = cluster.connection().await;
    let p = prefix("cluster");
    let l = Leases::new(conn.clone(), &p);
    // The zones' keys spread over slots (so over masters); a zone's two keys share one.
    let mut c = conn.clone();
    let mut slots = BTreeSet::new();
    for i in 0..3 {
        let z = zone(i);
        let lease: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(l.zone_key(z, "lease"))
            .query_async(&mut c)
            .await
            .unwrap();
        let fence: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(l.zone_key(z, "fence"))
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(lease, fence);
        slots.insert(lease);
    }
    assert_eq!(slots.len(), 3, "three zones, three slots");
    life_cycle(&l).await;
    l.announce("n-a", "10.0.0.1:8080", 5000).await.unwrap();
    l.announce("n-b", "", 5000).await.unwrap();
    assert_eq!(l.live_nodes().await.unwrap().len(), 2);
    l.withdraw("n-b").await.unwrap();
    assert_eq!(
        l.live_nodes().await.unwrap().keys().collect::<Vec<_>>(),
        ["n-a"]
    );
    l.add_zones(&[zone(0), zone(1)]).await.unwrap();
    assert_eq!(l.zones().await.unwrap().len(), 2);
}
