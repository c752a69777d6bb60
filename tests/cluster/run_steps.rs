//! The steps of a multi-node run as a client drives them: requests that move on to the
//! next node while one does not answer, riders whose sockets sit on chosen nodes, zone
//! holders as the engine reads them, and an order's way from placed to delivered in steps
//! a run can interleave with a node's failure.

use crate::support::*;
use dispatch_actors::domain::ZoneId;
use dispatch_actors::store::redis::RedisStore;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// The test's view of the nodes: which are usable now.
pub struct Nodes {
    pub apis: Vec<Api>,
    pub down: HashSet<usize>,
}

impl Nodes {
    pub fn up(&self) -> Vec<usize> {
        (0..self.apis.len())
            .filter(|i| !self.down.contains(i))
            .collect()
    }

    /// A request through the usable nodes, starting at `first`, until one answers
    /// `want` (a client retries on another node, as behind a proxy).
    pub async fn until(&self, first: usize, want: u16, call: impl AsyncCall) -> Value {
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

pub(crate) trait AsyncCall {
    async fn run(&self, api: &Api) -> Resp;
}

pub struct Post<'a>(pub &'a str, pub &'a str, pub Value);
impl AsyncCall for Post<'_> {
    async fn run(&self, api: &Api) -> Resp {
        api.post(self.0, Some(self.1), &self.2).await
    }
}

/// A rider as its app drives it.
pub struct TestRider {
    pub r: Rider,
    /// The node its socket is on.
    pub node: usize,
    pub at: (f64, f64),
}

pub async fn connect_rider(
    nodes: &Nodes,
    node: usize,
    id: &str,
    token: &str,
    at: (f64, f64),
) -> TestRider {
    let api = &nodes.apis[node];
    let (mut r, welcome) = api.rider_socket(id, token).await;
    eprintln!("rider {id} connects to node {node}: {welcome}");
    r.online().await;
    r.move_to(at).await;
    TestRider { r, node, at }
}

/// The zone holders of `zones`, read as the engine reads them.
pub async fn holders(store: &RedisStore, zones: &[ZoneId]) -> HashMap<ZoneId, String> {
    store
        .leases()
        .holders(zones.iter().copied())
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(z, h)| (z, h.node))
        .collect()
}

pub async fn until_held_by(store: &RedisStore, zones: &[ZoneId], allowed: &[&str]) {
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

/// Waits until every usable node's matcher holds `rider` idle where it is (its socket may
/// have just moved), so it is the nearest to an order on any node.
pub async fn until_seen_idle(nodes: &Nodes, rider: &TestRider) {
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
}

/// An order at `m` dropped off near `rider`, created and paid through changing nodes;
/// returns its id.
pub async fn place_paid(
    nodes: &Nodes,
    seq: usize,
    m: &Merchant,
    c: &Customer,
    rider: &TestRider,
) -> String {
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
    id
}

/// The merchant accepts `id` through some node.
pub async fn accept(nodes: &Nodes, seq: usize, m: &Merchant, id: &str) {
    let accept = json!({"prep_time_s": 0});
    nodes
        .until(
            seq + 2,
            200,
            Post(&format!("/orders/{id}/accept"), &m.token, accept),
        )
        .await;
}

/// `rider` takes the offer of `id` and is told it is assigned.
pub async fn take(
    nodes: &Nodes,
    id: &str,
    rider: &mut TestRider,
    assigned: &mut HashMap<String, HashSet<String>>,
) {
    let offer = loop {
        match rider.r.ws.next_json(Duration::from_secs(20)).await {
            Some(f) if f["type"] == "offer" && f["order_id"] == id => break f,
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
            f["type"] == "assigned" && f["order"]["order_id"] == id
        })
        .await;
    assigned
        .entry(id.to_string())
        .or_default()
        .insert(rider.r.id.clone());
    assert_eq!(a["order"]["rider_id"], rider.r.id.as_str());
}

/// `rider` picks `id` up and delivers it, as the app does: each report until it is
/// answered, again after an `unavailable` ("not now, retry": the order's node just died
/// and its zone is being taken up). Then a node must say it is delivered.
pub async fn finish(nodes: &Nodes, seq: usize, c: &Customer, rider: &mut TestRider, id: &str) {
    for kind in ["picked_up", "delivered"] {
        report_until_answered(rider, kind, id).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let i = nodes.up()[seq % nodes.up().len()];
        let s = nodes.apis[i]
            .get(&format!("/orders/{id}"), Some(&c.token))
            .await;
        if s.status.as_u16() == 200 && s.body["status"] == "delivered" {
            assert_eq!(s.body["rider_id"], rider.r.id.as_str());
            return;
        }
        assert!(
            Instant::now() < deadline,
            "order {id} not delivered: {}",
            s.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn report_until_answered(rider: &mut TestRider, kind: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    'tries: loop {
        rider.r.report(kind, id).await;
        loop {
            let f = rider.r.ws.next_json(Duration::from_secs(10)).await;
            let Some(f) = f else {
                panic!(
                    "no answer to {kind} of {id} (socket on node {})",
                    rider.node
                );
            };
            if f["type"] == "order_updated"
                && f["order"]["order_id"] == id
                && f["order"]["status"] == kind
            {
                return;
            }
            if f["type"] == "error" {
                assert!(
                    f["code"] == "unavailable" && Instant::now() < deadline,
                    "{kind} of {id} (socket on node {}) refused: {f}",
                    rider.node
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue 'tries;
            }
        }
    }
}

/// One order at `m` through changing nodes, delivered by `rider`. Returns its id once
/// delivered.
pub async fn deliver_one(
    nodes: &Nodes,
    seq: usize,
    m: &Merchant,
    c: &Customer,
    rider: &mut TestRider,
    assigned: &mut HashMap<String, HashSet<String>>,
) -> String {
    until_seen_idle(nodes, rider).await;
    let id = place_paid(nodes, seq, m, c, rider).await;
    accept(nodes, seq, m, &id).await;
    take(nodes, &id, rider, assigned).await;
    finish(nodes, seq, c, rider, &id).await;
    id
}
