//! Several `dispatchd` nodes on one Redis (`[cluster]`, docs/cluster.md): an order lives
//! on the node holding its merchant's zone, a rider on the node of its socket, and each
//! reaches the other through the mesh; when the zone's node dies, another takes the zone
//! and the order carries on.

use crate::harness::*;
use crate::support::*;
use dispatch_actors::store::redis::RedisStore;
use serde_json::{json, Value};
use std::time::Duration;

pub(crate) fn node_env(id: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("DISPATCH_CLUSTER__ENABLED", "true"),
        ("DISPATCH_CLUSTER__NODE_ID", id),
        ("DISPATCH_CLUSTER__LEASE_TTL_MS", "3000"),
        ("DISPATCH_CLUSTER__LEASE_RENEW_MS", "600"),
        // Offers at once (no planning rounds): the test follows each offer.
        ("DISPATCH_DISPATCH__POLICY", "nearest"),
    ]
}

/// The node id holding `zone`'s lease, if any (read as the engine reads it: a plain
/// Redis or a cluster alike).
async fn holder(store: &RedisStore, zone: &str) -> Option<String> {
    let zone = dispatch_actors::domain::ZoneId::parse(zone).unwrap();
    let mut held = store.leases().holders([zone]).await.unwrap();
    held.remove(&zone).map(|h| h.node)
}

async fn status(api: &Api, order_id: &str) -> String {
    let o: Value = api.order_state(order_id).await;
    o["status"].as_str().unwrap_or_default().to_string()
}

/// The zone's node is A (the rider's socket is on B, which survives).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_outlives_its_node() {
    two_nodes(["node-a", "node-b"], "node-a").await;
}

/// The zone's node is B, where the rider's socket is: both die, and the rider reconnects
/// to A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_outlives_its_node_and_its_riders_socket() {
    two_nodes(["node-c", "node-d"], "node-d").await;
}

/// The same on a Redis Cluster of three masters: the nodes' inboxes, leases, fences and
/// zone-tagged orders spread over the masters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_outlives_its_node_on_a_redis_cluster() {
    let cluster = crate::test_cluster::TestCluster::start();
    two_nodes_on(&cluster.url, ["node-a", "node-b"], "node-a").await;
}

/// Two nodes with these ids; `owner` takes the shop's zone (rendezvous hashing decides,
/// the same way in every run).
async fn two_nodes(ids: [&'static str; 2], owner_id: &str) {
    two_nodes_on(MAIN_REDIS, ids, owner_id).await
}

async fn two_nodes_on(url: &str, ids: [&'static str; 2], owner_id: &str) {
    let (prefix, _cleanup) = fresh_keys();
    let a = Server::start_ready(url, &prefix, &node_env(ids[0])).await;
    let b = Server::start_ready(url, &prefix, &node_env(ids[1])).await;
    let (on_a, on_b) = (a.api(), b.api());
    let zoning = dispatch_actors::domain::Zoning::new(7).unwrap();
    let zone = zoning
        .zone_of(dispatch_actors::domain::GeoPoint::new(SHOP.0, SHOP.1).unwrap())
        .to_string();
    let store = open_store(url, &prefix);

    // A merchant made on A: some node takes its zone.
    let m = on_a.merchant().await;
    // Rendezvous hashing gives the zone to `owner_id` once both nodes are live (the other
    // may hold it for a moment if it was live alone when the zone was listed).
    let other = if ids[0] == owner_id { ids[1] } else { ids[0] };
    let owner = until_holder(&store, &zone, Some(other)).await;
    assert_eq!(owner, owner_id);

    // The customer signs up on A and orders on B; the merchant accepts on B.
    let c = on_a.customer().await;
    let order = wait_for("B to take the order", Duration::from_secs(10), || {
        let (on_b, c, m) = (&on_b, &c, &m);
        async move {
            let r = on_b
                .post("/orders", Some(&c.token), &on_b.order_body(m, 1))
                .await;
            (r.status.as_u16() == 201).then(|| r.body["order_id"].as_str().unwrap().to_string())
        }
    })
    .await;
    on_a.pay(&c, &order).await;
    on_b.accept(&m, &order).await;

    // A rider made on A connects to B: its actor moves to B, and the order (on the
    // zone's node) offers itself to it there.
    let (rider, token) = on_a.create_rider().await;
    let mut r = rider_online(&on_b, &rider, &token, offset(SHOP, 100.0, 0.0)).await;
    r.take_order(&order).await;
    r.report("picked_up", &order).await;
    until_status(&on_a, &order, "picked_up").await;
    r.report("delivered", &order).await;
    until_status(&on_b, &order, "delivered").await;

    // A second order, paid; then the zone's node dies before the merchant accepts.
    let second = on_a.placed_order(&c, &m).await;
    on_a.pay(&c, &second).await;
    let rider_was_on_dead = owner == ids[1];
    let (alive, alive_api) = if owner == ids[0] {
        a.kill9();
        (b, on_b)
    } else {
        b.kill9();
        (a, on_a)
    };
    // The surviving node takes the zone once the lease lapses, and the order with it.
    until_holder(&store, &zone, Some(&owner)).await;
    wait_for(
        "the survivor to accept the order",
        Duration::from_secs(10),
        || {
            let (api, m, second) = (&alive_api, &m, &second);
            async move {
                let r = api
                    .order_call(second, "accept", &m.token, json!({"prep_time_s": 0}))
                    .await;
                (r.status.as_u16() == 200).then_some(())
            }
        },
    )
    .await;
    // The rider's socket was on the dead node: it reconnects to the survivor.
    let mut r = if rider_was_on_dead {
        rider_online(&alive_api, &rider, &token, offset(SHOP, 100.0, 0.0)).await
    } else {
        r
    };
    r.take_order(&second).await;
    r.report("picked_up", &second).await;
    r.report("delivered", &second).await;
    until_status(&alive_api, &second, "delivered").await;
    drop(alive);
}

/// Waits until `zone` has a holder other than `not` (None: any); returns it.
pub(crate) async fn until_holder(store: &RedisStore, zone: &str, not: Option<&str>) -> String {
    for _ in 0..200 {
        if let Some(h) = holder(store, zone).await {
            if Some(h.as_str()) != not {
                return h;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no node took zone {zone} (other than {not:?}) within 10 s");
}

async fn until_status(api: &Api, order_id: &str, want: &str) {
    for _ in 0..200 {
        if status(api, order_id).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "order {order_id} not {want} within 10 s: {}",
        status(api, order_id).await
    );
}

/// A node frozen past its lease (SIGSTOP) loses the zone to another; once it runs again
/// nothing it writes for the zone lands (refused by the lease, counted), however its
/// timers fell due meanwhile, and calls through it reach the order on its new node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_frozen_past_its_lease_is_fenced_off() {
    let (prefix, _cleanup) = fresh_keys();
    // The merchant-accept timer falls due while A is frozen: on thawing, A's order actor
    // would write at once (the reminder); B, the zone's new holder, writes the same
    // reminder as it rebuilds the order.
    let mut env = node_env("node-c");
    env.push(("DISPATCH_TIMERS__MERCHANT_ACCEPT_S", "2"));
    let a = Server::start_ready(MAIN_REDIS, &prefix, &env).await;
    let on_a = a.api();
    let zone = dispatch_actors::domain::Zoning::new(7)
        .unwrap()
        .zone_of(dispatch_actors::domain::GeoPoint::new(SHOP.0, SHOP.1).unwrap())
        .to_string();
    let mut conn = connect(MAIN_REDIS).await;
    let store = open_store(MAIN_REDIS, &prefix);
    // A alone: it takes the shop's zone.
    let m = on_a.merchant().await;
    assert_eq!(until_holder(&store, &zone, None).await, "node-c");
    let c = on_a.customer().await;
    let order = on_a.placed_order(&c, &m).await;
    on_a.pay(&c, &order).await;
    let key = format!("{prefix}{{z:{zone}}}:order:{order}");
    // A rider online on A.
    let (rider, token) = on_a.create_rider().await;
    let _on_a_socket = rider_online(&on_a, &rider, &token, offset(SHOP, 100.0, 0.0)).await;

    // A freezes; B starts and takes the zone once A's lease lapses (and keeps it:
    // rendezvous hashing gives this zone to node-d of the two).
    a.freeze(true);
    let mut env = node_env("node-d");
    env.push(("DISPATCH_TIMERS__MERCHANT_ACCEPT_S", "2"));
    let b = Server::start_ready(MAIN_REDIS, &prefix, &env).await;
    let on_b = b.api();
    assert_eq!(until_holder(&store, &zone, Some("node-c")).await, "node-d");
    wait_for(
        "B to rebuild the order and write its due reminder",
        WAIT,
        || {
            let (mut conn, key) = (conn.clone(), &key);
            async move {
                let w: Option<String> = redis::cmd("HGET")
                    .arg(key)
                    .arg("writer")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                (w.as_deref() == Some("node-d")).then_some(())
            }
        },
    )
    .await;

    // The rider's app reconnects to B (A does not answer): B rebuilds it from the store.
    let mut on_b_socket = rider_online(&on_b, &rider, &token, offset(SHOP, 100.0, 0.0)).await;

    a.freeze(false);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A's copy of the rider stood down once A heard of it on B: A sees the rider where B
    // has it, moving on.
    let moved = offset(SHOP, 300.0, 0.0);
    on_b_socket.move_to(moved).await;
    wait_for("A to see the rider where B has it", WAIT, || async {
        let r = on_a.nearby_rider(&rider).await?;
        ((r["location"]["lat"].as_f64()? - moved.0).abs() < 1e-6).then_some(())
    })
    .await;
    let writer: String = hget(&mut conn, key.clone(), "writer").await;
    assert_eq!(writer, "node-d", "a write from the fenced-off node landed");
    // (A's due write is refused by the lease, or A lets the zone go before it writes:
    // which comes first on thawing is up to the scheduler. Either way nothing lands.)
    assert_eq!(holder(&store, &zone).await.as_deref(), Some("node-d"));
    // Reads through A reach the order on B (B's escalation ladder has moved it on).
    let through_b = status(&on_b, &order).await;
    assert_eq!(status(&on_a, &order).await, through_b);
    let stored: String = hget(&mut conn, key.clone(), "status").await;
    assert_eq!(stored, through_b);
    drop((a, b));
}
