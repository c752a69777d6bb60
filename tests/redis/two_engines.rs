//! Accept criterion 3: two engine processes on one Redis.

use crate::harness::*;
use crate::support::*;
use std::time::Duration;

/// Two engine processes on one Redis cannot both assign one order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_cannot_both_assign_one_order() {
    let (prefix, _cleanup) = fresh_keys();
    // No automatic offers: the rider stays out of range.
    let env = [
        ("DISPATCH_DISPATCH__INITIAL_RADIUS_M", "500"),
        ("DISPATCH_DISPATCH__MAX_RADIUS_M", "1000"),
    ];
    let a = Server::start_ready(MAIN_REDIS, &prefix, &env).await;
    let on_a = a.api();
    let (m, c) = (on_a.merchant().await, on_a.customer().await);
    let (r, rtok) = on_a.create_rider().await;
    let mut orders = Vec::new();
    for _ in 0..4 {
        orders.push(on_a.accepted_order(&c, &m).await);
    }
    // The second engine starts on the same Redis and recovers the same orders.
    let b = Server::start_ready(MAIN_REDIS, &prefix, &env).await;
    let on_b = b.api();
    // The rider is connected to both.
    let far = offset(SHOP, 10_000.0, 0.0);
    let _rider_a = rider_online(&on_a, &r, &rtok, far).await;
    let _rider_b = rider_online(&on_b, &r, &rtok, far).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut conn = connect(MAIN_REDIS).await;
    for (i, id) in orders.iter().enumerate() {
        // Alternate who goes first; both requests race.
        let (first, second) = if i % 2 == 0 {
            (&on_a, &on_b)
        } else {
            (&on_b, &on_a)
        };
        let (x, y) = tokio::join!(first.assign(id, &r), second.assign(id, &r));
        let (xs, ys) = (x.status.as_u16(), y.status.as_u16());
        let wins = [xs, ys].iter().filter(|s| **s == 200).count();
        assert_eq!(wins, 1, "order {id}: {xs} / {ys}: {} {}", x.text, y.text);
        let (winner, loser) = if xs == 200 { (&x, &y) } else { (&y, &x) };
        assert_eq!(loser.status.as_u16(), 409, "{}", loser.text);
        assert_eq!(winner.body["status"], "assigned");
        // What Redis holds is the winner's version.
        let stored = first.order_state(id).await;
        let stored_b = second.order_state(id).await;
        let v: u64 = hget(&mut conn, format!("{prefix}order:{id}"), "version").await;
        assert_eq!(v, winner.body["version"].as_u64().unwrap());
        assert!(stored["status"] == "assigned" || stored_b["status"] == "assigned");
    }
    a.kill9();
    b.kill9();
}
