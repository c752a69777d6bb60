//! An idempotent request reserves its key before it does anything (a pending marker in the
//! store), so a retry arriving on another server, or after a crash, never runs it a second
//! time while the first may still be working; once the first is known dead (its lease ran
//! out) a retry runs again, and an order created with a key is found, never made twice.

use crate::helpers::*;
use actix_web::http::StatusCode;
use dispatch_actors::domain::{CustomerId, GeoPoint, ItemId, MerchantId, OrderId};
use dispatch_actors::store::Store;
use dispatchd::errors::ApiError;
use dispatchd::idempotency::{IdemKey, Idempotency};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[actix_web::test]
async fn a_retry_on_another_server_while_the_first_runs_does_not_run_it_again() {
    let app = spawn_app(|_| {}).await;
    let store: Arc<dyn Store> = app.state.engine.store().clone();
    // Two servers sharing one store: each has its own in-process bookkeeping.
    let (one, two) = (Idempotency::default(), Idempotency::default());
    let key = IdemKey::new("c_ann", "POST", "/api/v1/orders", "k1", b"{}");
    let runs = AtomicUsize::new(0);
    let (first, retry) = overlapping_runs((&one, &store), (&two, &store), &key, &runs).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the request ran twice");
    assert_eq!(retry.unwrap_err(), ApiError::RequestInProgress);
    let first = first.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(body_of(first).await, json!({"n": 1}));

    // Later retries, on either server, replay the first answer.
    let again = later_retry((&two, &store), key, &runs).await;
    assert_eq!(body_of(again).await, json!({"n": 1}));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[actix_web::test]
async fn a_crash_between_the_order_and_its_answer_never_makes_a_second_order() {
    let app = spawn_app(|_| {}).await;
    let c = app.customer().await;
    let m = app.merchant().await;
    let engine = app.state.engine.clone();
    let store: Arc<dyn Store> = engine.store().clone();
    let lease = Duration::from_millis(300);
    let key = IdemKey::new(&c.id, "POST", "/api/v1/orders", "crash-1", b"{}");
    let order_id = OrderId::derived_from(&format!("{}:crash-1", c.id));
    let create = || {
        let engine = engine.clone();
        let (order_id, cid) = (order_id.clone(), CustomerId::parse(&c.id).unwrap());
        let (mid, item) = (
            MerchantId::parse(&m.id).unwrap(),
            ItemId::parse(&m.item_id).unwrap(),
        );
        async move {
            let dropoff = GeoPoint::new(HOME.0, HOME.1).unwrap();
            let o = engine
                .create_order_as(order_id, cid, &mid, vec![(item, 1)], dropoff)
                .await?;
            Ok::<_, ApiError>((StatusCode::CREATED, serde_json::to_value(o).unwrap()))
        }
    };

    // The first server writes the order and dies before storing the answer.
    let crashed = Idempotency::with_lease(lease);
    crash_after_work((&crashed, &store), &key, create).await;
    assert_eq!(app.live_order_ids().await, vec![order_id.to_string()]);

    // A retry on a restarted server while the lease holds: in progress, nothing run.
    let restarted = Idempotency::with_lease(lease);
    let early = retry_while_held((&restarted, &store), &key).await;
    assert_eq!(early.unwrap_err(), ApiError::RequestInProgress);

    // Once the lease is out the retry runs, and finds the order the first one wrote.
    let retried = wait_for(
        "the reservation to lapse",
        Duration::from_secs(5),
        || async {
            match restarted.once(&store, Some(key.clone()), create).await {
                Err(ApiError::RequestInProgress) => None,
                other => Some(other),
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(retried.status(), StatusCode::CREATED);
    assert_eq!(body_of(retried).await["order_id"], order_id.as_str());
    assert_eq!(app.live_order_ids().await, vec![order_id.to_string()]);
}

#[actix_web::test]
async fn a_failed_request_releases_its_key_at_once() {
    let app = spawn_app(|_| {}).await;
    let store: Arc<dyn Store> = app.state.engine.store().clone();
    // A long lease: only an explicit release lets the retry run now.
    let one = Idempotency::with_lease(Duration::from_secs(3600));
    let key = IdemKey::new("c_bob", "POST", "/api/v1/orders", "fails", b"{}");
    let failed = one
        .once(&store, Some(key.clone()), || async {
            Err::<(StatusCode, Value), _>(ApiError::invalid("qty must be at least 1"))
        })
        .await;
    assert!(matches!(failed, Err(ApiError::Engine(_))));
    let two = Idempotency::with_lease(Duration::from_secs(3600));
    let ok = two
        .once(&store, Some(key), || async {
            Ok((StatusCode::CREATED, json!({"ok": true})))
        })
        .await
        .unwrap();
    assert_eq!(body_of(ok).await, json!({"ok": true}));
}
