//! `Idempotency-Key` on create and pay: scoped by caller, method, path and key. A retry of
//! a request that succeeded replays its response verbatim; a failed request stores
//! nothing; the same key with another body is 409 `idempotency_key_reused`; a duplicate
//! arriving while the first is in flight gets 409 `request_in_progress`.

use crate::errors::ApiError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use dispatch_actors::store::{Store, StoredResponse};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

pub const KEY_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Default)]
pub struct InFlight(Mutex<HashSet<String>>);

/// Releases an in-flight key when the request ends, however it ends.
struct Guard<'a> {
    set: &'a InFlight,
    key: String,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.set.0.lock().remove(&self.key);
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

/// Runs `run` at most once per (caller, method, path, key); `run` yields status + JSON.
pub async fn once<F, Fut>(
    store: &Arc<dyn Store>,
    inflight: &InFlight,
    req: &HttpRequest,
    caller: &str,
    body: &[u8],
    run: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(StatusCode, serde_json::Value), ApiError>>,
{
    let Some(key) = header_key(req)? else {
        let (status, json) = run().await?;
        return Ok(HttpResponse::build(status).json(json));
    };
    let scoped = format!("idem:{caller}:{}:{}:{key}", req.method(), req.path());
    let hash = body_hash(body);
    let check = |stored: &StoredResponse| -> Result<HttpResponse, ApiError> {
        if stored.body_hash != hash {
            Err(ApiError::IdempotencyKeyReused)
        } else {
            Ok(replay(stored))
        }
    };
    if let Some(stored) = store
        .get_idempotent(&scoped)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
    {
        return check(&stored);
    }
    if !inflight.0.lock().insert(scoped.clone()) {
        return Err(ApiError::RequestInProgress);
    }
    let _guard = Guard {
        set: inflight,
        key: scoped.clone(),
    };
    // Checked again under the in-flight mark: the first may have finished meanwhile.
    if let Some(stored) = store
        .get_idempotent(&scoped)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
    {
        return check(&stored);
    }
    let (status, json) = run().await?;
    let stored = StoredResponse {
        body_hash: hash,
        status: status.as_u16(),
        body: json.to_string(),
    };
    let kept = store
        .put_idempotent(&scoped, stored, KEY_TTL)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(replay(&kept))
}
