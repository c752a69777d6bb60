//! The order stream: at `--orders-per-s`, a random customer orders one item from a random
//! merchant (drop-off 0.5–4 km away), pays, and the merchant accepts over REST. The offer
//! latency clock starts just before the merchant's accept request is sent (not at its
//! response: under `nearest` the offer may reach a rider before the response reaches the
//! merchant). At most `--max-inflight` orders are on their way through REST at once; an
//! order due while all are busy is dropped and counted.

use super::rest::{call, Merchant};
use super::rider::Phase;
use super::Shared;
use crate::stats::bump;
use rand::Rng;
use reqwest::{Client, Method};
use serde_json::json;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

pub struct OrderSetup {
    pub shared: Arc<Shared>,
    pub http: Client,
    pub url: String,
    pub merchants: Vec<Merchant>,
    pub customers: Vec<String>,
    pub city: super::movement::CityBox,
}

/// Places orders at `rate` per second until the phase leaves `Running`.
pub async fn generate(
    setup: Arc<OrderSetup>,
    rate: f64,
    max_inflight: usize,
    phase: watch::Receiver<Phase>,
) {
    if rate <= 0.0 || setup.merchants.is_empty() || setup.customers.is_empty() {
        return;
    }
    pace(
        rate,
        max_inflight,
        phase,
        &setup.shared.counters.orders_dropped,
        |seq| {
            let s = setup.clone();
            async move { one_order(&s, seq).await }
        },
    )
    .await;
}

/// Starts `place(seq)` `rate` times a second until the phase leaves `Running`, at most
/// `max_inflight` at once (one due past that is dropped and counted in `dropped`).
/// Returns the slots, so a caller can wait for the orders still running.
pub(crate) async fn pace<F, Fut>(
    rate: f64,
    max_inflight: usize,
    mut phase: watch::Receiver<Phase>,
    dropped: &AtomicU64,
    place: F,
) -> Arc<Semaphore>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max_inflight.max(1)));
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut placed, mut seq) = (0u64, 0u64);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = phase.changed() => {
                if r.is_err() || *phase.borrow_and_update() != Phase::Running {
                    return slots;
                }
            }
        }
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        while placed < due {
            placed += 1;
            match slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    seq += 1;
                    let order = place(seq);
                    tokio::spawn(async move {
                        order.await;
                        drop(permit);
                    });
                }
                Err(_) => bump(dropped),
            }
        }
    }
}

async fn one_order(s: &OrderSetup, seq: u64) {
    let shared = &s.shared;
    let c = &shared.counters;
    let (m, customer, dropoff) = {
        let mut rng = rand::thread_rng();
        let m = &s.merchants[rng.gen_range(0..s.merchants.len())];
        let customer = &s.customers[rng.gen_range(0..s.customers.len())];
        let (x, y) = s.city.random_near(m.at, 500.0, 4000.0, &mut rng);
        (m, customer, s.city.to_latlon(x, y))
    };
    let url = &s.url;
    let Some(order) = call(
        shared,
        &s.http,
        Method::POST,
        format!("{url}/api/v1/orders"),
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
    if call(
        shared,
        &s.http,
        Method::POST,
        format!("{url}/api/v1/orders/{order_id}/pay"),
        customer,
        json!({"payment_ref": format!("city-load-{seq}")}),
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
    let accepted = call(
        shared,
        &s.http,
        Method::POST,
        format!("{url}/api/v1/orders/{order_id}/accept"),
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

/// Forgets orders that have waited longer than `window` for an offer (counted as
/// `no_offer`); returns how many are still waiting.
pub fn prune_pending(shared: &Shared, window: Duration) -> usize {
    let now = Instant::now();
    let mut p = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
    let before = p.len();
    p.retain(|_, t0| now.saturating_duration_since(*t0) < window);
    let gone = before - p.len();
    shared
        .counters
        .no_offer
        .fetch_add(gone as u64, std::sync::atomic::Ordering::Relaxed);
    p.len()
}
