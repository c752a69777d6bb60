//! Benchmark (not a test) of the Redis write path against a real Redis on loopback:
//! acknowledged order transitions per second and the latency a store write adds to each
//! acknowledgement, with group commit (one pipeline for whatever is queued) and without
//! (`max_batch = 1`: one round trip per write); then rider positions written per second
//! by the batched flusher.
//!
//! `cargo bench -p dispatch-actors --bench redis_write_path` (REDIS_URL overrides
//! redis://127.0.0.1:6379/0; BENCH_SECS the seconds per run, default 5).

use dispatch_actors::domain::order::{NewOrder, Order, OrderCommand, OrderLine, Pickup};
use dispatch_actors::domain::{CustomerId, GeoPoint, ItemId, MerchantId, OrderId, RiderId};
use dispatch_actors::store::redis::{RedisConfig, RedisStore};
use dispatch_actors::store::{OrderRecord, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

fn secs() -> u64 {
    std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

fn new_order() -> Order {
    let m = MerchantId::generate();
    Order::new(
        NewOrder {
            order_id: OrderId::generate(),
            customer_id: CustomerId::generate(),
            merchant_id: m.clone(),
            items: vec![OrderLine {
                item_id: ItemId::generate(),
                name: "Dumplings".into(),
                qty: 2,
                price_cents: 1200,
            }],
            pickup: Pickup {
                lat: 31.2304,
                lon: 121.4737,
                merchant_id: m,
                name: "Noodles".into(),
            },
            dropoff: GeoPoint::new(31.242, 121.485).unwrap(),
        },
        1,
    )
}

async fn open(prefix: &str, max_batch: usize) -> RedisStore {
    let s = RedisStore::open(RedisConfig {
        url: url(),
        prefix: prefix.into(),
        max_batch,
        ..Default::default()
    })
    .expect("redis url");
    let t = Instant::now();
    while !s.reachable() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "redis not reachable at {}",
            url()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.mark_recovered();
    s
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// `clients` concurrent writers, each moving its own orders through the state machine
/// and awaiting every write (as a REST handler does before it answers).
async fn transitions(max_batch: usize, clients: usize) -> (f64, f64, f64) {
    let prefix = format!("dispatch-bench:{}:", OrderId::generate());
    let store = Arc::new(open(&prefix, max_batch).await);
    let until = Instant::now() + Duration::from_secs(secs());
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let rider = RiderId::generate();
            let mut order = new_order();
            let mut step = 0u32;
            while Instant::now() < until {
                let cmd = match step % 6 {
                    0 => None,
                    1 => Some(OrderCommand::Pay {
                        payment_ref: "p".into(),
                    }),
                    2 => Some(OrderCommand::Accept { prep_time_s: 60 }),
                    3 => Some(OrderCommand::Assign {
                        rider_id: rider.clone(),
                    }),
                    4 => Some(OrderCommand::PickUp {
                        rider_id: rider.clone(),
                    }),
                    _ => Some(OrderCommand::Deliver {
                        rider_id: rider.clone(),
                    }),
                };
                if step.is_multiple_of(6) {
                    order = new_order();
                }
                if let Some(c) = cmd {
                    order.apply(c, 2).expect("legal transition");
                }
                step += 1;
                let t = Instant::now();
                store
                    .save_order_record(&OrderRecord::bare(order.clone()))
                    .await
                    .expect("stored");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let _ = store.delete_all().await;
    (all.len() as f64 / elapsed, pct(&all, 0.5), pct(&all, 0.99))
}

/// Positions of `riders` riders, every rider moving every round; the flusher writes the
/// latest per rider per tick (HSET + GEOADD). Returns positions written per second.
async fn positions(riders: usize) -> f64 {
    let prefix = format!("dispatch-bench:{}:", OrderId::generate());
    let store = open(&prefix, 512).await;
    let ids: Vec<RiderId> = (0..riders).map(|_| RiderId::generate()).collect();
    let mut conn = redis::Client::open(url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let rounds = 10u64;
    let started = Instant::now();
    for round in 1..=rounds {
        for (i, r) in ids.iter().enumerate() {
            let p = GeoPoint::new(31.0 + (i % 1000) as f64 * 1e-4, 121.0 + round as f64 * 1e-5)
                .unwrap();
            store.record_position(r, p, round);
        }
        // Wait until this round is in Redis (one pipeline per tick writes them all).
        let probe = ids.last().unwrap().as_str().to_string();
        loop {
            let v: Option<String> = redis::cmd("HGET")
                .arg(format!("{prefix}positions"))
                .arg(&probe)
                .query_async(&mut conn)
                .await
                .unwrap();
            if v.is_some_and(|v| v.ends_with(&format!(",{round}"))) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let rate = (riders as u64 * rounds) as f64 / started.elapsed().as_secs_f64();
    let _ = store.delete_all().await;
    rate
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("Redis write path against {} ({} s per run)", url(), secs());
        println!("| writes | clients | acknowledged transitions/s | p50 ms | p99 ms |");
        println!("|---|---|---|---|---|");
        for clients in [1usize, 64, 256] {
            for (label, batch) in [("group commit", 512usize), ("one round trip each", 1)] {
                let (rate, p50, p99) = transitions(batch, clients).await;
                println!("| {label} | {clients} | {rate:.0} | {p50:.2} | {p99:.2} |");
            }
        }
        println!();
        for riders in [10_000usize, 100_000] {
            let rate = positions(riders).await;
            println!(
                "positions, {riders} riders moving every round: {rate:.0} positions written/s"
            );
        }
    });
}
