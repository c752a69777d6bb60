//! Idempotency keys reserved in Redis before the request runs: two servers on one Redis
//! never both run one key, a crashed request's reservation lapses after its lease, and a
//! failed one releases its key at once.

use crate::harness::{fresh_keys, open_store, require_redis, MAIN_REDIS};
use crate::support::{body_of, crash_after_work, later_retry, overlapping_runs, retry_while_held};
use actix_web::http::StatusCode;
use dispatch_actors::store::{Reservation, Store};
use dispatchd::errors::ApiError;
use dispatchd::idempotency::{IdemKey, Idempotency};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn open(prefix: &str) -> Arc<dyn Store> {
    let s = open_store(MAIN_REDIS, prefix);
    let t = Instant::now();
    while !s.reachable() {
        assert!(t.elapsed() < Duration::from_secs(5), "redis not reachable");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.mark_recovered();
    Arc::new(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_redis_never_both_run_one_key() {
    require_redis();
    let (prefix, _cleanup) = fresh_keys();
    let (a, b) = (open(&prefix).await, open(&prefix).await);
    let (one, two) = (Idempotency::default(), Idempotency::default());
    let key = IdemKey::new("c_ann", "POST", "/api/v1/orders", "k1", b"{}");
    let runs = AtomicUsize::new(0);
    let (first, retry) = overlapping_runs((&one, &a), (&two, &b), &key, &runs).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the request ran twice");
    assert_eq!(retry.unwrap_err(), ApiError::RequestInProgress);
    assert_eq!(body_of(first.unwrap()).await, json!({"n": 1}));
    let again = later_retry((&two, &b), key, &runs).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(
        body_of(again).await,
        json!({"n": 1}),
        "the first answer replays"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_requests_reservation_lapses_and_a_failed_one_is_released() {
    require_redis();
    let (prefix, _cleanup) = fresh_keys();
    let store = open(&prefix).await;
    let lease = Duration::from_millis(300);

    // The store's own view: reserved, then pending for another owner, then lapsed.
    assert_eq!(
        store.reserve_idempotent("idem:x", "p1", lease).await,
        Ok(Reservation::Reserved)
    );
    assert_eq!(
        store.reserve_idempotent("idem:x", "p2", lease).await,
        Ok(Reservation::Pending)
    );
    assert_eq!(
        store.get_idempotent("idem:x").await,
        Ok(None),
        "a marker is no answer"
    );
    tokio::time::sleep(lease * 2).await;
    assert_eq!(
        store.reserve_idempotent("idem:x", "p2", lease).await,
        Ok(Reservation::Reserved)
    );
    // Only the owner's release removes its marker.
    store.release_idempotent("idem:x", "p1").await.unwrap();
    assert_eq!(
        store.reserve_idempotent("idem:x", "p3", lease).await,
        Ok(Reservation::Pending)
    );
    store.release_idempotent("idem:x", "p2").await.unwrap();
    assert_eq!(
        store.reserve_idempotent("idem:x", "p3", lease).await,
        Ok(Reservation::Reserved)
    );

    // Through the server's path: a request dies after its write, before its answer.
    let key = IdemKey::new("c_bob", "POST", "/api/v1/orders", "crash", b"{}");
    let crashed = Idempotency::with_lease(lease);
    crash_after_work((&crashed, &store), &key, || async {
        Ok((StatusCode::CREATED, json!({})))
    })
    .await;
    let restarted = Idempotency::with_lease(lease);
    let early = retry_while_held((&restarted, &store), &key).await;
    assert_eq!(early.unwrap_err(), ApiError::RequestInProgress);
    tokio::time::sleep(lease * 2).await;
    let retried = restarted
        .once(&store, Some(key), || async {
            Ok((StatusCode::CREATED, json!({"retried": true})))
        })
        .await
        .unwrap();
    assert_eq!(body_of(retried).await, json!({"retried": true}));

    // A failed request stores nothing and frees its key for the retry at once.
    let long = Idempotency::with_lease(Duration::from_secs(3600));
    let key = IdemKey::new("c_bob", "POST", "/api/v1/orders", "fails", b"{}");
    let failed = long
        .once(&store, Some(key.clone()), || async {
            Err::<(StatusCode, Value), _>(ApiError::invalid("qty must be at least 1"))
        })
        .await;
    assert!(failed.is_err());
    let ok = Idempotency::with_lease(Duration::from_secs(3600))
        .once(&store, Some(key), || async {
            Ok((StatusCode::CREATED, json!({"ok": true})))
        })
        .await
        .unwrap();
    assert_eq!(body_of(ok).await, json!({"ok": true}));
}
