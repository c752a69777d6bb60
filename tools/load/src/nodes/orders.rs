//! The order stream of a `nodes` run: at `--orders-per-s`, a random customer orders from a
//! random merchant, pays and the merchant accepts, each of the three requests sent to a
//! node drawn at random. A request is "local" when it reached the node holding the order's
//! zone, "remote" when that node had to pass it on through the mesh; their latencies are
//! kept apart. The offer latency clock starts just before the accept is sent, as in `city`.

use super::tally::OrderPath;
use super::Run;
use crate::city::orders::pace;
use crate::city::rest::call;
use crate::city::rider::Phase;
use crate::stats::bump;
use rand::Rng;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Places orders at `rate` per second until the phase leaves `Running`, then waits (10 s
/// at most) for those still in REST; at most `max_inflight` orders in REST at once (an
/// order due past it is dropped and counted).
pub async fn generate(
    run: Arc<Run>,
    rate: f64,
    max_inflight: usize,
    phase: watch::Receiver<Phase>,
) {
    if rate <= 0.0 || run.merchants.is_empty() || run.customers.is_empty() {
        return;
    }
    let slots = pace(
        rate,
        max_inflight,
        phase,
        &run.shared.counters.orders_dropped,
        |seq| {
            let run = run.clone();
            async move { one_order(&run, seq).await }
        },
    )
    .await;
    // Orders still in REST finish before the run stops the nodes (else they meet a node
    // shutting down).
    let all = u32::try_from(max_inflight.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(10), slots.acquire_many(all)).await;
}

/// One request to node `node` about an order of zone node `home`, timed.
async fn timed(
    run: &Run,
    node: usize,
    home: usize,
    path: String,
    bearer: &str,
    body: Value,
    what: &str,
) -> Option<Value> {
    let t0 = Instant::now();
    let url = format!("{}/api/v1{path}", run.urls[node]);
    let r = call(
        &run.shared,
        &run.http,
        Method::POST,
        url,
        bearer,
        body,
        what,
    )
    .await;
    if r.is_some() {
        let hist = if node == home {
            &run.rest_local
        } else {
            &run.rest_remote
        };
        hist.record(t0.elapsed());
    }
    r
}

async fn one_order(run: &Run, seq: u64) {
    let shared = &run.shared;
    let c = &shared.counters;
    let (mi, customer, dropoff, nodes) = {
        let mut rng = rand::thread_rng();
        let mi = rng.gen_range(0..run.merchants.len());
        let customer = &run.customers[rng.gen_range(0..run.customers.len())];
        let (x, y) = run
            .city
            .random_near(run.merchants[mi].at, 500.0, 3000.0, &mut rng);
        let n = run.urls.len();
        let nodes = [0; 3].map(|_| rng.gen_range(0..n));
        (mi, customer, run.city.to_latlon(x, y), nodes)
    };
    let m = &run.merchants[mi];
    let home = run.merchant_node[mi];
    let Some(order) = timed(
        run,
        nodes[0],
        home,
        "/orders".into(),
        customer,
        json!({"merchant_id": m.id, "items": [{"item_id": m.item_id, "qty": 1}],
               "dropoff": {"lat": dropoff.0, "lon": dropoff.1}}),
        "POST /orders",
    )
    .await
    else {
        return;
    };
    let Some(order_id) = order["order_id"].as_str().map(str::to_string) else {
        return;
    };
    bump(&c.orders_created);
    run.orders.lock().unwrap_or_else(|e| e.into_inner()).insert(
        order_id.clone(),
        OrderPath {
            merchant: mi,
            accept_node: nodes[2],
        },
    );
    if timed(
        run,
        nodes[1],
        home,
        format!("/orders/{order_id}/pay"),
        customer,
        json!({"payment_ref": format!("nodes-load-{seq}")}),
        "POST /orders/{id}/pay",
    )
    .await
    .is_none()
    {
        return;
    }
    bump(&c.orders_paid);
    let sent = Instant::now();
    shared
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(order_id.clone(), sent);
    let accepted = timed(
        run,
        nodes[2],
        home,
        format!("/orders/{order_id}/accept"),
        &m.token,
        json!({}),
        "POST /orders/{id}/accept",
    )
    .await;
    if accepted.is_some() {
        shared.accept_rtt.record(sent.elapsed());
        bump(&c.orders_accepted);
    } else {
        shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&order_id);
    }
}
