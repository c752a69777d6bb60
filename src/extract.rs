//! Extractors: who is calling, and the JSON body in the protocol's error shape. They
//! answer exactly what the handlers answered when each did this by hand (401 before 403,
//! `invalid JSON body: …` 400, 413 over 64 KiB).
//!
//! actix runs a handler's extractors in argument order and stops at the first refusal, so
//! a handler lists the caller first and the body after. A handler that must check
//! something else before the body (the order exists and is the caller's) takes
//! `Result<Json<T>, ApiError>` and applies `?` at that point, keeping the order of
//! refusals clients see.

use crate::auth::{request_token, Authenticated, Principal};
use crate::errors::ApiError;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::{ready, LocalBoxFuture};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;

pub const MAX_BODY_BYTES: usize = 64 * 1024;

fn app_state(req: &HttpRequest) -> Result<&AppState, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .map(|d| d.get_ref())
        .ok_or_else(|| ApiError::internal("application state not registered"))
}

/// The token's holder: from this node's tokens at once, or, for a token it does not
/// hold, from the store (another node may have issued it: docs/cluster.md, "Tokens").
fn authenticated(
    req: &HttpRequest,
    allow_query: bool,
) -> LocalBoxFuture<'static, Result<Authenticated, ApiError>> {
    let state = match req.app_data::<web::Data<AppState>>() {
        Some(s) => s.clone(),
        None => {
            return Box::pin(ready(Err(ApiError::internal(
                "application state not registered",
            ))))
        }
    };
    let Some(token) = request_token(req, allow_query) else {
        return Box::pin(ready(Err(ApiError::Unauthorized(
            "missing bearer token".into(),
        ))));
    };
    if let Some(a) = state.auth.lookup_grant(&token) {
        return Box::pin(ready(Ok(a)));
    }
    Box::pin(async move {
        state
            .auth
            .resolve_grant(&token)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("invalid token".into()))
    })
}

/// The caller named by `Authorization: Bearer …` (REST never reads `?token=`).
pub struct Caller(pub Principal);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let who = authenticated(req, false);
        Box::pin(async move { who.await.map(|a| Caller(a.who)) })
    }
}

/// The dispatcher, or 401 (no or bad token) / 403 `dispatcher only`.
pub struct Dispatcher;

impl FromRequest for Dispatcher {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let who = authenticated(req, false);
        Box::pin(async move {
            match who.await?.who {
                Principal::Dispatcher => Ok(Dispatcher),
                _ => Err(ApiError::forbidden("dispatcher only")),
            }
        })
    }
}

/// A WebSocket upgrade request and its caller: the browser origin is checked first (403),
/// then the token, from the header or `?token=` (browsers cannot set headers on a
/// WebSocket). The handshake itself completes in [`crate::ws`], after the route's own
/// checks and the socket caps.
pub struct SocketRequest {
    pub who: Principal,
    /// When the caller's token expires (the socket closes then).
    pub expires_ms: Option<u64>,
    /// The token itself, looked up once more after the socket is counted (a revocation
    /// between the two then cannot leave the socket open).
    pub(crate) token: String,
    pub state: web::Data<AppState>,
    pub(crate) req: HttpRequest,
    pub(crate) body: web::Payload,
}

impl FromRequest for SocketRequest {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let origin = app_state(req).and_then(|s| crate::ws::check_origin(s, req));
        let who = authenticated(req, true);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let body = web::Payload::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            origin?;
            let who = who.await?;
            let state =
                state.ok_or_else(|| ApiError::internal("application state not registered"))?;
            let body = body.await.map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(SocketRequest {
                who: who.who,
                expires_ms: who.expires_ms,
                token: request_token(&req, true).unwrap_or_default(),
                state,
                req,
                body,
            })
        })
    }
}

/// A JSON body parsed into `T`, with the bytes it came from (idempotency hashes them).
/// The content type is not checked: clients have always been able to omit it.
pub struct Json<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(_: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let payload = payload.take();
        Box::pin(async move {
            let raw = read_body(payload).await?.freeze();
            let value = parse_json(&raw)?;
            Ok(Json { value, raw })
        })
    }
}

/// Reads a request body, refusing more than 64 KiB (413) without buffering it.
pub async fn read_body<S>(mut payload: S) -> Result<BytesMut, ApiError>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            PayloadError::Overflow => ApiError::PayloadTooLarge,
            other => ApiError::invalid(format!("could not read body: {other}")),
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses JSON; an empty body reads as `{}` so optional-only bodies may be omitted.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
}
