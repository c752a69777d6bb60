//! Idempotency seen from two servers at once: the in-process suite shares one store, the
//! Redis suite opens two clients of one Redis; the race they check is the same.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use dispatch_actors::store::Store;
use dispatchd::errors::ApiError;
use dispatchd::idempotency::{IdemKey, Idempotency};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::oneshot;

pub async fn body_of(r: HttpResponse) -> Value {
    let bytes = actix_web::body::to_bytes(r.into_body()).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Runs `key` on server `one` (store `a`) and, while that run sits between its write and
/// its answer, retries it on server `two` (store `b`). Each run of the body counts in
/// `runs`; the first answers `{"n": 1}`, the retry `{"n": 2}`. Returns (first, retry).
pub async fn overlapping_runs(
    (one, a): (&Idempotency, &Arc<dyn Store>),
    (two, b): (&Idempotency, &Arc<dyn Store>),
    key: &IdemKey,
    runs: &AtomicUsize,
) -> (
    Result<HttpResponse, ApiError>,
    Result<HttpResponse, ApiError>,
) {
    let (entered_tx, entered_rx) = oneshot::channel::<()>();
    let (finish_tx, finish_rx) = oneshot::channel::<()>();
    let first = one.once(a, Some(key.clone()), || async {
        runs.fetch_add(1, Ordering::SeqCst);
        let _ = entered_tx.send(());
        // Between its write and its answer.
        let _ = finish_rx.await;
        Ok((StatusCode::CREATED, json!({"n": 1})))
    });
    let retry = async {
        entered_rx.await.unwrap();
        let r = two
            .once(b, Some(key.clone()), || async {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok((StatusCode::CREATED, json!({"n": 2})))
            })
            .await;
        let _ = finish_tx.send(());
        r
    };
    tokio::join!(first, retry)
}

/// A later retry of `key` on `server` (store `s`): it counts in `runs` if its body runs,
/// and would answer `{"n": 3}`.
pub async fn later_retry(
    (server, s): (&Idempotency, &Arc<dyn Store>),
    key: IdemKey,
    runs: &AtomicUsize,
) -> HttpResponse {
    server
        .once(s, Some(key), || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok((StatusCode::CREATED, json!({"n": 3})))
        })
        .await
        .unwrap()
}

/// A request on `server` that stops for good after `work` ran and before its answer, as
/// a process killed there would; returns once `work` has run.
pub async fn crash_after_work<Fut>(
    (server, store): (&Idempotency, &Arc<dyn Store>),
    key: &IdemKey,
    work: impl FnOnce() -> Fut,
) where
    Fut: std::future::Future<Output = Result<(StatusCode, Value), ApiError>>,
{
    let (entered_tx, entered_rx) = oneshot::channel::<()>();
    let first = server.once(store, Some(key.clone()), || async {
        let written = work().await;
        let _ = entered_tx.send(());
        std::future::pending::<()>().await;
        written
    });
    tokio::select! {
        _ = first => panic!("the first request cannot finish"),
        _ = entered_rx => {}
    }
}

/// A retry of `key` on `server` while another request's reservation holds: its body must
/// not run.
pub async fn retry_while_held(
    (server, store): (&Idempotency, &Arc<dyn Store>),
    key: &IdemKey,
) -> Result<HttpResponse, ApiError> {
    server
        .once(store, Some(key.clone()), || async {
            panic!("ran while the first request's reservation held")
        })
        .await
}
