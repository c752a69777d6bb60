//! Three `dispatchd` nodes, each in a network namespace of its own, on a three-master
//! Redis Cluster on the host (docs/cluster.md). Orders at merchants in three zones are
//! placed, paid and accepted through changing nodes and delivered by riders whose sockets
//! are on changing nodes, before, during and after one node is cut off from the network
//! (a real partition: its zones move to the others and its riders reconnect to them; once
//! healed it hears the others again and orders go through it). Every order acknowledged is
//! delivered, by exactly one rider. (A node frozen past its lease and a node killed are in
//! tests/redis/nodes.rs, with two nodes.)

use crate::bed::{Node, TestCluster, TestNet, DISPATCHER};
use crate::support::*;
use dispatch_actors::domain::{GeoPoint, ZoneId, Zoning};
use dispatch_actors::store::redis::{RedisConfig, RedisStore};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

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

/// The test's view of the nodes: which are usable now.
struct Nodes {
    apis: Vec<Api>,
    down: HashSet<usize>,
}

impl Nodes {
    fn up(&self) -> Vec<usize> {
        (0..self.apis.len())
            .filter(|i| !self.down.contains(i))
            .collect()
    }

    /// A request through the usable nodes, starting at `first`, until one answers
    /// `want` (a client retries on another node, as behind a proxy).
    async fn until(&self, first: usize, want: u16, call: impl AsyncCall) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        let up = self.up();
        let mut k = first;
        loop {
            let i = up[k % up.len()];
            let r = call.run(&self.apis[i]).await;
            if r.status.as_u16() == want {
                return r.body;
            }
            assert!(
                Instant::now() < deadline,
                "no node answered {want}; last: {} {}",
                r.status,
                r.text
            );
            k += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

trait AsyncCall {
    async fn run(&self, api: &Api) -> Resp;
}

struct Post<'a>(&'a str, &'a str, Value);
impl AsyncCall for Post<'_> {
    async fn run(&self, api: &Api) -> Resp {
        api.post(self.0, Some(self.1), &self.2).await
    }
}

/// A rider as its app drives it.
struct TestRider {
    r: Rider,
    /// The node its socket is on.
    node: usize,
    at: (f64, f64),
}

async fn connect_rider(
    nodes: &Nodes,
    node: usize,
    id: &str,
    token: &str,
    at: (f64, f64),
) -> TestRider {
    let api = &nodes.apis[node];
    let (mut r, _) = api.rider_socket(id, token).await;
    r.online().await;
    r.move_to(at).await;
    TestRider { r, node, at }
}

/// The zone holders of `zones`, read as the engine reads them.
async fn holders(store: &RedisStore, zones: &[ZoneId]) -> HashMap<ZoneId, String> {
    store
        .leases()
        .holders(zones.iter().copied())
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(z, h)| (z, h.node))
        .collect()
}

async fn until_held_by(store: &RedisStore, zones: &[ZoneId], allowed: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let h = holders(store, zones).await;
        if h.len() == zones.len() && h.values().all(|n| allowed.contains(&n.as_str())) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "zones not all held by {allowed:?}: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One order at merchant `k` through changing nodes, delivered by rider `k`. Returns its
/// id once delivered.
async fn deliver_one(
    nodes: &Nodes,
    seq: usize,
    m: &Merchant,
    c: &Customer,
    rider: &mut TestRider,
    assigned: &mut HashMap<String, HashSet<String>>,
) -> String {
    // Every node's matcher holds the rider where it is (its socket may have just moved),
    // so it is the nearest to the order's node.
    let path = format!("/riders/nearby?lat={}&lon={}", rider.at.0, rider.at.1);
    let deadline = Instant::now() + Duration::from_secs(10);
    'nodes: for i in nodes.up() {
        let api = &nodes.apis[i];
        loop {
            let r = api.get(&path, Some(&api.dispatcher)).await;
            let seen = r.body.as_array().is_some_and(|l| {
                l.iter()
                    .any(|x| x["rider_id"] == rider.r.id.as_str() && x["status"] == "idle")
            });
            if seen {
                continue 'nodes;
            }
            assert!(
                Instant::now() < deadline,
                "node {i} does not see rider {} (socket on node {}) idle: {}",
                rider.r.id,
                rider.node,
                r.text
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let body = json!({"merchant_id": m.id, "items": [{"item_id": m.item_id, "qty": 1}],
                      "dropoff": {"lat": rider.at.0 + 0.01, "lon": rider.at.1}});
    let o = nodes.until(seq, 201, Post("/orders", &c.token, body)).await;
    let id = o["order_id"].as_str().unwrap().to_string();
    let pay = json!({"payment_ref": format!("p-{id}")});
    nodes
        .until(
            seq + 1,
            200,
            Post(&format!("/orders/{id}/pay"), &c.token, pay),
        )
        .await;
    let accept = json!({"prep_time_s": 0});
    nodes
        .until(
            seq + 2,
            200,
            Post(&format!("/orders/{id}/accept"), &m.token, accept),
        )
        .await;
    let offer = loop {
        match rider.r.ws.next_json(Duration::from_secs(20)).await {
            Some(f) if f["type"] == "offer" && f["order_id"] == id.as_str() => break f,
            Some(_) => {}
            None => {
                let mut why = String::new();
                for i in nodes.up() {
                    let api = &nodes.apis[i];
                    let t = api
                        .get(&format!("/orders/{id}/trace"), Some(&api.dispatcher))
                        .await;
                    let n = api
                        .get(
                            &format!("/riders/nearby?lat={}&lon={}", rider.at.0, rider.at.1),
                            Some(&api.dispatcher),
                        )
                        .await;
                    why += &format!(
                        "\nnode {i}: trace {} {}\nnearby {}",
                        t.status, t.text, n.text
                    );
                }
                panic!(
                    "no offer of {id} to {} (socket on node {}):{why}",
                    rider.r.id, rider.node
                );
            }
        }
    };
    rider
        .r
        .send(json!({"type": "accept", "offer_id": offer["offer_id"]}))
        .await;
    let a = rider
        .r
        .ws
        .recv_until("assigned", Duration::from_secs(10), |f| {
            f["type"] == "assigned" && f["order"]["order_id"] == id.as_str()
        })
        .await;
    assigned
        .entry(id.clone())
        .or_default()
        .insert(rider.r.id.clone());
    assert_eq!(a["order"]["rider_id"], rider.r.id.as_str());
    rider.r.report("picked_up", &id).await;
    rider.r.report("delivered", &id).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let i = nodes.up()[seq % nodes.up().len()];
        let s = nodes.apis[i]
            .get(&format!("/orders/{id}"), Some(&c.token))
            .await;
        if s.status.as_u16() == 200 && s.body["status"] == "delivered" {
            assert_eq!(s.body["rider_id"], rider.r.id.as_str());
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "order {id} not delivered: {}",
            s.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_every_order_through_a_partition() {
    let Some(net) = TestNet::for_test("three_nodes", 3) else {
        return;
    };
    let cluster = TestCluster::start(net.host_ip(), 3);
    let prefix = format!("dispatch-3n-{}:", std::process::id());
    let ids = ["n0", "n1", "n2"];
    let procs: Vec<Node> = ids
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
    for (k, s) in socks.iter_mut().enumerate() {
        if s.node == 2 {
            *s = connect_rider(&nodes, 0, &riders[k].0, &riders[k].1, s.at).await;
        }
    }
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

    // The audit: every order delivered (each round waited for it), none held by two
    // riders, and the store agrees with what the riders were told.
    assert_eq!(delivered.len(), 9);
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
    drop(procs);
    drop(cluster);
}
