//! Keepers against a real Redis (a prefix of each test's own; a redis-server of the test's
//! own where it is paused; a Redis Cluster where named), several in one process, each
//! with a short TTL.

use super::*;
use crate::cluster::owner::owner;
use crate::cluster::owner::tests::zones;
use crate::cluster::test_redis::{clean, manager, prefix, shared, OwnCluster, OwnRedis};
use futures_util::future::select_all;
use std::collections::BTreeSet;

fn settings(node: &str, ttl_ms: u64, renew_ms: u64) -> KeeperSettings {
    KeeperSettings {
        node: node.into(),
        info: format!("{node}.test:8080"),
        ttl: Duration::from_millis(ttl_ms),
        renew: Duration::from_millis(renew_ms),
    }
}

/// The zones rendezvous hashing gives `node` among `nodes`.
fn share_of(all: &[ZoneId], node: &str, nodes: &[&str]) -> BTreeSet<ZoneId> {
    all.iter()
        .filter(|z| owner(**z, nodes.iter().copied()) == Some(node))
        .copied()
        .collect()
}

/// Waits until `pred` holds over what the keepers publish (in the order given), at most
/// `within`; returns how long it took.
async fn wait_for(
    rxs: &mut [watch::Receiver<HeldZones>],
    within: Duration,
    what: &str,
    pred: impl Fn(&[HeldZones]) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let now: Vec<HeldZones> = rxs.iter().map(|r| r.borrow().clone()).collect();
        if pred(&now) {
            return start.elapsed();
        }
        let left = within.saturating_sub(start.elapsed());
        let any = select_all(rxs.iter_mut().map(|r| Box::pin(r.changed())));
        if tokio::time::timeout(left, any).await.is_err() {
            panic!("{what}: not within {within:?}; published {now:?}");
        }
    }
}

/// Every keeper holds exactly its rendezvous share of `all` among `nodes`.
fn split(all: &[ZoneId], nodes: &[&str]) -> impl Fn(&[HeldZones]) -> bool {
    let want: Vec<BTreeSet<ZoneId>> = nodes.iter().map(|n| share_of(all, n, nodes)).collect();
    move |held| {
        held.iter()
            .zip(&want)
            .all(|(h, w)| h.keys().copied().collect::<BTreeSet<_>>() == *w)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_then_three_keepers_split_the_zones_by_rendezvous() {
    let p = prefix("keepers_split");
    let all = zones(30);
    shared(&p).await.add_zones(&all).await.unwrap();
    let a = spawn(shared(&p).await, settings("n-a", 600, 150));
    let b = spawn(shared(&p).await, settings("n-b", 600, 150));
    let mut rxs = vec![a.held(), b.held()];
    wait_for(
        &mut rxs,
        Duration::from_secs(5),
        "two split",
        split(&all, &["n-a", "n-b"]),
    )
    .await;
    let first: HeldZones = rxs.iter().flat_map(|r| r.borrow().clone()).collect();
    assert_eq!(first.len(), 30);

    let c = spawn(shared(&p).await, settings("n-c", 600, 150));
    rxs.push(c.held());
    let nodes = ["n-a", "n-b", "n-c"];
    wait_for(
        &mut rxs,
        Duration::from_secs(5),
        "three split",
        split(&all, &nodes),
    )
    .await;
    let to_c = share_of(&all, "n-c", &nodes);
    assert!((4..=16).contains(&to_c.len()), "n-c took {}", to_c.len());
    let held_c = rxs[2].borrow().clone();
    for z in &to_c {
        assert!(
            held_c[z] > first[z],
            "{z}: drained by its holder, taken with a higher fence"
        );
    }
    for rx in &rxs[..2] {
        for (z, f) in rx.borrow().iter() {
            assert_eq!(*f, first[z], "{z}: kept by its holder");
        }
    }
    // The leases in Redis say the same.
    let shown = shared(&p).await.holders(all.iter().copied()).await.unwrap();
    for (i, rx) in rxs.iter().enumerate() {
        for (z, f) in rx.borrow().iter() {
            assert_eq!((shown[z].node.as_str(), shown[z].fence), (nodes[i], *f));
        }
    }
    for k in [a, b, c] {
        k.stop().await;
    }
    clean(&p).await;
}

async fn spawn_all(
    p: &str,
    nodes: &[&str],
    ttl_ms: u64,
    renew_ms: u64,
) -> (Vec<KeeperHandle>, Vec<watch::Receiver<HeldZones>>) {
    let mut keepers = Vec::new();
    for n in nodes {
        keepers.push(spawn(shared(p).await, settings(n, ttl_ms, renew_ms)));
    }
    let rxs = keepers.iter().map(KeeperHandle::held).collect();
    (keepers, rxs)
}

/// A keeper that stops renewing without releasing (a crash, a partition): the others
/// leave its zones alone while its leases stand, then take them with higher fences, and
/// its old fences are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_keepers_zones_are_taken_after_the_ttl_with_higher_fences() {
    let p = prefix("keepers_dead");
    let all = zones(30);
    let (ttl_ms, renew_ms) = (600, 150);
    let leases = shared(&p).await;
    leases.add_zones(&all).await.unwrap();
    let nodes = ["n-a", "n-b", "n-c"];
    let (mut keepers, mut rxs) = spawn_all(&p, &nodes, ttl_ms, renew_ms).await;
    wait_for(
        &mut rxs,
        Duration::from_secs(5),
        "three split",
        split(&all, &nodes),
    )
    .await;
    let of_c = rxs[2].borrow().clone();
    assert!(!of_c.is_empty());

    drop(keepers.pop());
    rxs.pop();
    let took = wait_for(
        &mut rxs,
        Duration::from_secs(5),
        "the survivors take n-c's zones",
        split(&all, &nodes[..2]),
    )
    .await;
    // n-c renewed at most one period before it died: its leases stood at least the TTL
    // less that period, and nobody touched them meanwhile.
    let floor = Duration::from_millis(ttl_ms - renew_ms) - Duration::from_millis(100);
    assert!(
        took >= floor,
        "taken after {took:?}: before n-c's leases lapsed"
    );
    let now: HeldZones = rxs.iter().flat_map(|r| r.borrow().clone()).collect();
    for (z, old) in &of_c {
        assert!(now[z] > *old, "{z}: fence {} after {old}", now[z]);
        assert_eq!(leases.renew(*z, "n-c", *old, ttl_ms).await, Ok(false));
        assert_eq!(leases.release(*z, "n-c", *old).await, Ok(false));
    }
    assert_eq!(
        leases
            .live_nodes()
            .await
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["n-a", "n-b"]
    );
    for k in keepers {
        k.stop().await;
    }
    clean(&p).await;
}

/// A graceful stop releases every lease and withdraws the node: the others take its zones
/// at their next round, long before the TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_hands_the_zones_over_at_once() {
    let p = prefix("keepers_stop");
    let all = zones(30);
    let (ttl_ms, renew_ms) = (3000, 150);
    shared(&p).await.add_zones(&all).await.unwrap();
    let nodes = ["n-a", "n-b", "n-c"];
    let (mut keepers, mut rxs) = spawn_all(&p, &nodes, ttl_ms, renew_ms).await;
    wait_for(
        &mut rxs,
        Duration::from_secs(5),
        "three split",
        split(&all, &nodes),
    )
    .await;
    let of_c = rxs[2].borrow().clone();
    let c_rx = rxs.pop().unwrap();
    let start = Instant::now();
    keepers.pop().unwrap().stop().await;
    assert!(
        c_rx.borrow().is_empty(),
        "a stopped keeper publishes nothing"
    );
    wait_for(
        &mut rxs,
        Duration::from_secs(5),
        "the others take n-c's zones",
        split(&all, &nodes[..2]),
    )
    .await;
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(ttl_ms / 2),
        "handed over after {took:?}: as if the leases had lapsed"
    );
    let now: HeldZones = rxs.iter().flat_map(|r| r.borrow().clone()).collect();
    for (z, old) in &of_c {
        assert!(now[z] > *old);
    }
    for k in keepers {
        k.stop().await;
    }
    clean(&p).await;
}

/// A keeper whose Redis stops answering (SIGSTOP: the connection stays open, calls hang)
/// stops publishing its zones before their leases can lapse in Redis, and takes them back
/// with higher fences once Redis answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keeper_cut_off_from_redis_stops_acting_before_its_leases_lapse() {
    let redis = OwnRedis::start();
    let leases = Leases::new(manager(&redis.url()).await, "cut:");
    let all = zones(5);
    leases.add_zones(&all).await.unwrap();
    let (ttl_ms, renew_ms) = (1000, 250);
    let k = spawn(leases.clone(), settings("n-a", ttl_ms, renew_ms));
    let mut rxs = vec![k.held()];
    wait_for(&mut rxs, Duration::from_secs(5), "holds every zone", |h| {
        h[0].len() == 5
    })
    .await;

    redis.pause();
    let paused = Instant::now();
    let dropped = wait_for(&mut rxs, Duration::from_secs(3), "drops every zone", |h| {
        h[0].is_empty()
    })
    .await;
    // The last renewal answered was sent before the pause, so its leases may lapse in
    // Redis as early as `paused + ttl`: the keeper must have let go before that.
    assert!(
        dropped < Duration::from_millis(ttl_ms),
        "still published {dropped:?} after Redis stopped answering"
    );
    // ...and not at the first missed renewal: the last answered one was sent at most a
    // period (and a round) before the pause.
    assert!(
        dropped >= Duration::from_millis(ttl_ms - 2 * renew_ms) - Duration::from_millis(100),
        "dropped after only {dropped:?}"
    );
    assert!(paused.elapsed() >= dropped);

    // Once the leases have lapsed in Redis too, Redis answers again: the keeper takes the
    // zones back as a new holder would.
    tokio::time::sleep_until(paused + Duration::from_millis(ttl_ms + 100)).await;
    redis.resume();
    wait_for(&mut rxs, Duration::from_secs(5), "takes them back", |h| {
        h[0].len() == 5 && h[0].values().all(|f| *f == 2)
    })
    .await;
    k.stop().await;
}

/// Two keepers over a Redis Cluster connection split the zones as on a plain Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepers_split_the_zones_on_a_redis_cluster() {
    let cluster = OwnCluster::start();
    let conn = cluster.connection().await;
    let all = zones(30);
    let p = prefix("keepers_cluster");
    Leases::new(conn.clone(), &p).add_zones(&all).await.unwrap();
    let nodes = ["n-a", "n-b"];
    let mut keepers: Vec<KeeperHandle> = nodes
        .iter()
        .map(|n| spawn(Leases::new(conn.clone(), &p), settings(n, 600, 150)))
        .collect();
    let mut rxs: Vec<_> = keepers.iter().map(KeeperHandle::held).collect();
    wait_for(
        &mut rxs,
        Duration::from_secs(5),
        "two split",
        split(&all, &nodes),
    )
    .await;
    keepers.remove(0).stop().await;
    wait_for(
        &mut rxs[1..],
        Duration::from_secs(5),
        "n-b takes all",
        |h| h[0].len() == 30,
    )
    .await;
    keepers.remove(0).stop().await;
}
