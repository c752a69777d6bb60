//! `Idempotency-Key` on create and pay: scoped by caller, method, path and key. A retry of
//! a request that succeeded replays its response verbatim; a failed request stores
//! nothing; the same key with another body is 409 `idempotency_key_reused`; a duplicate
//! arriving while the first is in flight gets 409 `request_in_progress`.
//!
//! The key is reserved in the store before the request does anything (a pending marker
//! with a lease), and its response replaces the marker afterwards. So a duplicate on
//! another server, or a retry after this one crashed mid-request, finds the marker and is
//! told the request is in progress instead of running it again. A marker whose request
//! died lapses after [`LEASE`]; the retry then runs, and a create finds the order the
//! first one stored (its id derives from the key), so it never makes a second one.

use crate::errors::ApiError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use dispatch_actors::store::{Reservation, Store, StoredResponse};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// How long a stored response is replayed.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 3600);

/// How long a request's reservation of its key holds when the request never finishes
/// (the server crashed, or the client went away mid-request).
pub const LEASE: Duration = Duration::from_secs(15);

/// This process's keys in flight, and how long stored responses and reservations last.
pub struct Idempotency {
    inflight: Mutex<HashSet<String>>,
    pub ttl: Duration,
    pub lease: Duration,
}

impl Default for Idempotency {
    fn default() -> Self {
        Self::with_lease(LEASE)
    }
}

impl Idempotency {
    pub fn with_lease(lease: Duration) -> Self {
        Self {
            inflight: Mutex::default(),
            ttl: KEY_TTL,
            lease,
        }
    }
}

/// Releases an in-flight key when the request ends, however it ends.
struct Guard<'a> {
    set: &'a Mutex<HashSet<String>>,
    key: String,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.set.lock().remove(&self.key);
    }
}

/// One request's key, scoped by caller, method and path, with the hash of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemKey {
    pub scoped: String,
    pub body_hash: u64,
}

impl IdemKey {
    pub fn new(caller: &str, method: &str, path: &str, key: &str, body: &[u8]) -> Self {
        Self {
            scoped: format!("idem:{caller}:{method}:{path}:{key}"),
            body_hash: body_hash(body),
        }
    }

    /// The request's key, if it sent one (a malformed header is 400).
    pub fn of(req: &HttpRequest, caller: &str, body: &[u8]) -> Result<Option<Self>, ApiError> {
        Ok(
            header_key(req)?
                .map(|k| Self::new(caller, req.method().as_str(), req.path(), &k, body)),
        )
    }
}

pub fn header_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(v) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key must be printable text"))?;
    if v.is_empty() || v.len() > 128 {
        return Err(ApiError::invalid(
            "Idempotency-Key must be 1-128 characters",
        ));
    }
    Ok(Some(v.to_string()))
}

/// FNV-1a: stable across processes and releases, so a retry after a restart matches.
fn body_hash(body: &[u8]) -> u64 {
    body.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn replay(r: &StoredResponse) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK))
        .content_type("application/json")
        .body(r.body.clone())
}

impl Idempotency {
    /// Runs `run` at most once per key; `run` yields status + JSON.
    pub async fn once<F, Fut>(
        &self,
        store: &Arc<dyn Store>,
        key: Option<IdemKey>,
        run: F,
    ) -> Result<HttpResponse, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(StatusCode, serde_json::Value), ApiError>>,
    {
        let Some(key) = key else {
            let (status, json) = run().await?;
            return Ok(HttpResponse::build(status).json(json));
        };
        let check = |stored: &StoredResponse| -> Result<HttpResponse, ApiError> {
            if stored.body_hash != key.body_hash {
                Err(ApiError::IdempotencyKeyReused)
            } else {
                Ok(replay(stored))
            }
        };
        // This process first: a local duplicate never reaches the store.
        if !self.inflight.lock().insert(key.scoped.clone()) {
            return Err(ApiError::RequestInProgress);
        }
        let _guard = Guard {
            set: &self.inflight,
            key: key.scoped.clone(),
        };
        let owner = uuid::Uuid::new_v4().to_string();
        match store
            .reserve_idempotent(&key.scoped, &owner, self.lease)
            .await?
        {
            Reservation::Done(stored) => return check(&stored),
            Reservation::Pending => return Err(ApiError::RequestInProgress),
            Reservation::Reserved => {}
        }
        let (status, json) = match run().await {
            Ok(answer) => answer,
            Err(e) => {
                // Failed: nothing is stored, and the retry may run at once.
                if let Err(re) = store.release_idempotent(&key.scoped, &owner).await {
                    tracing::warn!(error = %re, "idempotency key not released; it lapses");
                }
                return Err(e);
            }
        };
        let stored = StoredResponse {
            body_hash: key.body_hash,
            status: status.as_u16(),
            body: json.to_string(),
        };
        let kept = store
            .complete_idempotent(&key.scoped, &owner, stored, self.ttl)
            .await?;
        Ok(replay(&kept))
    }
}
