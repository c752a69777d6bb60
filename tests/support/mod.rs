//! What the integration tests share, whichever way they start the server: a client for
//! the REST API and the sockets (`Api`, `WsClient`), the actors of the protocol
//! (customers, merchants, riders, the dispatcher) and small helpers for places and time.
//!
//! Included by each test crate with `#[path = "../support/mod.rs"] mod support;`: tests/api
//! runs the server in-process, tests/redis runs the binary as a child process.

mod http;
mod idem;
mod people;
mod receiver;
mod ws;

pub use http::{Api, Resp};
pub use idem::{body_of, crash_after_work, later_retry, overlapping_runs, retry_while_held};
pub use people::{Customer, Merchant, Rider};
pub use receiver::{assert_signed, Received, Receiver};
pub use ws::{Ended, WsClient};

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The merchant every test orders from (Shanghai, People's Square).
pub const SHOP: (f64, f64) = (31.2304, 121.4737);
/// A drop-off about 1.5 km north-east of the shop.
pub const HOME: (f64, f64) = (31.2420, 121.4850);
/// How long a test waits for a frame or a state it expects.
pub const T: Duration = Duration::from_secs(5);

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A process-wide unique suffix (usernames must be unique per server).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A point `north_m` metres north and `east_m` metres east of `from`.
pub fn offset(from: (f64, f64), north_m: f64, east_m: f64) -> (f64, f64) {
    let lat = from.0 + north_m / 111_195.0;
    let lon = from.1 + east_m / (111_195.0 * from.0.to_radians().cos());
    (lat, lon)
}

/// Polls `check` until it yields `Some`, or panics after `within`.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Another's object: 403 or 404, never its data.
#[track_caller]
pub fn assert_denied(r: &Resp) {
    assert!(
        matches!(r.status.as_u16(), 403 | 404),
        "expected 403 or 404, got {}: {}",
        r.status,
        r.text
    );
    assert!(
        matches!(r.code(), "forbidden" | "not_found"),
        "code: {}",
        r.text
    );
    for leak in ["order_id", "total_cents", "customer_id", "dropoff", "items"] {
        assert!(
            r.body.get(leak).is_none(),
            "the refusal leaks {leak}: {}",
            r.text
        );
    }
}

/// The string `key` of every object in the JSON array `list`.
pub fn strs<'a>(list: &'a serde_json::Value, key: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap())
        .collect()
}

/// An order as the API shows it, without its ETA (which moves with every fix), so that
/// "nothing changed" can be compared.
pub fn strip_eta(o: &serde_json::Value) -> serde_json::Value {
    let mut o = o.clone();
    o.as_object_mut().unwrap().remove("eta_s");
    o
}
