//! Three `dispatchd` nodes, each in a network namespace of its own, on a three-master
//! Redis Cluster on the host (docs/cluster.md). Orders at merchants in three zones are
//! placed, paid and accepted through changing nodes and delivered by riders whose sockets
//! are on changing nodes, while each node in turn fails:
//! - n2 is cut off from the network (a real partition: its zones move to the others and
//!   its riders reconnect to them; healed, it hears the others again and takes its zones
//!   back);
//! - n1 is frozen (SIGSTOP) past its lease with an order of its zone paid and waiting: the
//!   order is accepted and delivered through the others; thawed, it rejoins;
//! - n0 is killed (SIGKILL) while an order of its zone is in the hands of a rider whose
//!   socket is on n0 too: the rider reconnects and delivers it.
//!
//! Every order acknowledged is delivered, by exactly one rider; and an audit over every
//! zone's event stream (tests/cluster/stream_audit.rs) finds no write from a fenced-off
//! node, no version going back and no order in two riders' hands.

use crate::bed::{Node, TestCluster, TestNet, DISPATCHER};
use crate::run_steps::*;
use crate::stream_audit;
use crate::support::*;
use dispatch_actors::domain::{GeoPoint, ZoneId, Zoning};
use dispatch_actors::store::redis::{RedisConfig, RedisStore};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

fn env<'a>(seeds: &'a str, prefix: &'a str, id: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("DISPATCH_STORE__BACKEND", "redis"),
        ("DISPATCH_STORE__REDIS_URL", seeds),
        ("DISPATCH_STORE__REDIS_PREFIX", prefix),
        ("DISPATCH_CLUSTER__ENABLED", "true"),
        ("DISPATCH_CLUSTER__NODE_ID", id),
        ("DISPATCH_CLUSTER__LEASE_TTL_MS", "3000"),
        ("DISPATCH_CLUSTER__LEASE_RENEW_MS", "600"),
        ("DISPATCH_DISPATCH__POLICY", "nearest"),
        // An offer that went to a rider the test does not drive expires soon.
        ("DISPATCH_TIMERS__OFFER_TTL_S", "4"),
        ("DISPATCH_RATE_LIMIT__PER_TOKEN_PER_S", "100000"),
        ("DISPATCH_RATE_LIMIT__PER_TOKEN_BURST", "100000"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_every_order_through_a_partition() {
    let Some(net) = TestNet::for_test("three_nodes", 3) else {
        return;
    };
    let cluster = TestCluster::start(net.host_ip(), 3);
    let prefix = format!("dispatch-3n-{}:", std::process::id());
    let ids = ["n0", "n1", "n2"];
    let mut procs: Vec<Node> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| Node::in_netns(&net, i, &env(cluster.seeds(), &prefix, id)))
        .collect();
    let mut nodes = Nodes {
        apis: procs
            .iter()
            .map(|n| Api::new(&n.base, DISPATCHER))
            .collect(),
        down: HashSet::new(),
    };
    for api in &nodes.apis {
        wait_for("the node ready", Duration::from_secs(20), || async {
            let r = reqwest::get(format!("{}/readyz", api.base)).await.ok()?;
            (r.status() == 200).then_some(())
        })
        .await;
    }
    let store = RedisStore::open(RedisConfig {
        url: cluster.seeds().to_string(),
        prefix: prefix.clone(),
        ..Default::default()
    })
    .unwrap();

    // Merchants in three zones, made through different nodes; each zone gets a holder.
    let zoning = Zoning::new(7).unwrap();
    let spots = [SHOP, offset(SHOP, 4000.0, 0.0), offset(SHOP, 0.0, 4000.0)];
    let mut merchants = Vec::new();
    for (i, at) in spots.iter().enumerate() {
        merchants.push(nodes.apis[i].merchant_at(*at, 900).await);
    }
    let zones: Vec<ZoneId> = spots
        .iter()
        .map(|p| zoning.zone_of(GeoPoint::new(p.0, p.1).unwrap()))
        .collect();
    until_held_by(&store, &zones, &ids).await;
    let c = nodes.apis[1].customer().await;
    // A rider near each merchant, its socket on the next node.
    let mut riders = Vec::new();
    for k in 0..spots.len() {
        riders.push(nodes.apis[k].create_rider().await);
    }
    let mut socks = Vec::new();
    for (k, (id, token)) in riders.iter().enumerate() {
        let at = offset(spots[k], 150.0, 0.0);
        socks.push(connect_rider(&nodes, (k + 1) % 3, id, token, at).await);
    }
    let mut assigned: HashMap<String, HashSet<String>> = HashMap::new();
    let mut delivered = Vec::new();
    let mut seq = 0;
    let round = |label: &str| eprintln!("three nodes: {label}");

    round("all up");
    for k in 0..3 {
        seq += 3;
        delivered
            .push(deliver_one(&nodes, seq, &merchants[k], &c, &mut socks[k], &mut assigned).await);
    }

    // n2 cut off: its zones move to n0 and n1; its riders reconnect elsewhere.
    round("n2 cut off");
    net.partition(2);
    nodes.down.insert(2);
    until_held_by(&store, &zones, &["n0", "n1"]).await;
    reconnect_riders_of(&nodes, 2, &riders, &mut socks).await;
    for k in 0..3 {
        seq += 3;
        delivered
            .push(deliver_one(&nodes, seq, &merchants[k], &c, &mut socks[k], &mut assigned).await);
    }
    // Healed: n2 takes back the zones rendezvous hashing gives it, hears the others'
    // riders again, and orders go on through all three.
    round("n2 healed");
    net.heal(2);
    // Connections pooled before the partition are dead: a fresh client.
    nodes.apis[2] = Api::new(&procs[2].base, DISPATCHER);
    nodes.down.remove(&2);
    until_held_by(&store, &zones, &ids).await;
    for k in 0..3 {
        seq += 3;
        delivered
            .push(deliver_one(&nodes, seq, &merchants[k], &c, &mut socks[k], &mut assigned).await);
    }

    // n1 frozen past its lease with an order of one of its zones paid and waiting for the
    // merchant: the others take its zones (and the order); its riders reconnect to them.
    round("n1 frozen");
    let k = zone_held_by(&store, &zones, "n1").await;
    until_seen_idle(&nodes, &socks[k]).await;
    seq += 3;
    let waiting = place_paid(&nodes, seq, &merchants[k], &c, &socks[k]).await;
    procs[1].pause();
    nodes.down.insert(1);
    until_held_by(&store, &zones, &["n0", "n2"]).await;
    reconnect_riders_of(&nodes, 1, &riders, &mut socks).await;
    until_seen_idle(&nodes, &socks[k]).await;
    accept(&nodes, seq, &merchants[k], &waiting).await;
    take(&nodes, &waiting, &mut socks[k], &mut assigned).await;
    finish(&nodes, seq, &c, &mut socks[k], &waiting).await;
    delivered.push(waiting);
    for k in 0..3 {
        seq += 3;
        delivered
            .push(deliver_one(&nodes, seq, &merchants[k], &c, &mut socks[k], &mut assigned).await);
    }
    // Thawed: whatever n1 had due is refused by the lease (the audit below says so); it
    // takes its zones back and orders go through all three again.
    round("n1 thawed");
    procs[1].resume();
    nodes.apis[1] = Api::new(&procs[1].base, DISPATCHER);
    nodes.down.remove(&1);
    until_held_by(&store, &zones, &ids).await;
    for k in 0..3 {
        seq += 3;
        delivered
            .push(deliver_one(&nodes, seq, &merchants[k], &c, &mut socks[k], &mut assigned).await);
    }

    // n0 killed while one of its zones' orders is in a rider's hands, the rider's socket
    // on n0 too: another node takes the zone and rebuilds the order, the rider reconnects
    // there and delivers it.
    round("n0 killed");
    let k = zone_held_by(&store, &zones, "n0").await;
    if socks[k].node != 0 {
        socks[k] = connect_rider(&nodes, 0, &riders[k].0, &riders[k].1, socks[k].at).await;
    }
    until_seen_idle(&nodes, &socks[k]).await;
    seq += 3;
    let in_hand = place_paid(&nodes, seq, &merchants[k], &c, &socks[k]).await;
    accept(&nodes, seq, &merchants[k], &in_hand).await;
    take(&nodes, &in_hand, &mut socks[k], &mut assigned).await;
    procs[0].kill9();
    nodes.down.insert(0);
    until_held_by(&store, &zones, &["n1", "n2"]).await;
    reconnect_riders_of(&nodes, 0, &riders, &mut socks).await;
    finish(&nodes, seq, &c, &mut socks[k], &in_hand).await;
    delivered.push(in_hand);
    for k in 0..3 {
        seq += 3;
        delivered
            .push(deliver_one(&nodes, seq, &merchants[k], &c, &mut socks[k], &mut assigned).await);
    }

    // The audit: every order delivered (each step waited for it), none held by two
    // riders, and the store agrees with what the riders were told.
    assert_eq!(delivered.len(), 20);
    for (order, riders) in &assigned {
        assert_eq!(riders.len(), 1, "order {order} assigned to {riders:?}");
    }
    let api = &nodes.apis[nodes.up()[0]];
    for id in &delivered {
        let o = api
            .get(&format!("/orders/{id}"), Some(&c.token))
            .await
            .expect(200);
        assert_eq!(o["status"], "delivered", "{o}");
        assert!(assigned[id].contains(o["rider_id"].as_str().unwrap()));
    }
    // And over the event streams: no fenced-off write landed, versions only went up, no
    // order was in two riders' hands, and every order written reached a final state.
    let streams = zone_streams(cluster.seeds(), &store, &zones).await;
    let seen = stream_audit::audit(&streams).unwrap_or_else(|e| panic!("the audit: {e}"));
    eprintln!(
        "three nodes: audited {} entries of {} orders; {} zones changed hands",
        seen.entries, seen.orders, seen.zones_changing_hands
    );
    assert_eq!(seen.orders, delivered.len(), "orders in the streams");
    for id in &delivered {
        assert_eq!(
            seen.last_status.get(id).map(String::as_str),
            Some("delivered")
        );
    }
    assert!(
        seen.zones_changing_hands >= 2,
        "the run moved zones between nodes: {seen:?}"
    );
    drop(procs);
    drop(cluster);
}

/// Riders whose sockets were on node `gone` reconnect to the next usable node.
async fn reconnect_riders_of(
    nodes: &Nodes,
    gone: usize,
    riders: &[(String, String)],
    socks: &mut [TestRider],
) {
    let to = nodes.up()[0];
    for (k, s) in socks.iter_mut().enumerate() {
        if s.node == gone {
            *s = connect_rider(nodes, to, &riders[k].0, &riders[k].1, s.at).await;
        }
    }
}

/// The index of a zone `node` holds (the run is deterministic: rendezvous hashing over
/// fixed node ids and zones), or the first zone if it holds none.
async fn zone_held_by(store: &RedisStore, zones: &[ZoneId], node: &str) -> usize {
    let h = holders(store, zones).await;
    zones
        .iter()
        .position(|z| h.get(z).map(String::as_str) == Some(node))
        .unwrap_or(0)
}

/// Every zone's event stream, read back from the cluster.
async fn zone_streams(
    seeds: &str,
    store: &RedisStore,
    zones: &[ZoneId],
) -> Vec<(String, Vec<stream_audit::Entry>)> {
    let client = redis::cluster::ClusterClient::new(seeds.split(',').collect::<Vec<_>>()).unwrap();
    let mut conn = client.get_async_connection().await.unwrap();
    let mut out = Vec::new();
    for z in zones {
        let key = store.zone_key(*z, "events");
        let raw: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap();
        let entries = raw
            .iter()
            .filter_map(|(id, f)| stream_audit::parse(id, f).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        out.push((key, entries));
    }
    out
}
