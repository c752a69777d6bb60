//! One error type for every handler, mapped to HTTP in exactly one place
//! (docs/protocol.md, "Conventions"): `{"error": {"code": "…", "message": "…"}}`.
//! 503 `unavailable` means the store (or the engine) cannot serve right now, so clients
//! retry; a bug on our side is 500 `internal`, so it never reads as an outage.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use dispatch_actors::store::StoreError;
use dispatch_actors::EngineError;
use serde::Serialize;
use serde_json::json;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    Engine(EngineError),
    Unauthorized(String),
    UsernameTaken,
    IdempotencyKeyReused,
    RequestInProgress,
    PayloadTooLarge,
    /// 409 `limit_reached`: a configured cap on things a client creates or holds (webhook
    /// subscriptions, live share links per order) is reached.
    LimitReached(String),
    /// 429 `rate_limited`, with `Retry-After` in whole seconds.
    RateLimited {
        retry_after_s: u64,
    },
    /// 503 `unavailable` because the server is at capacity for this kind of work (password
    /// hashing), with `Retry-After` in whole seconds.
    Busy {
        retry_after_s: u64,
    },
    /// 503 `unavailable` while a restart rebuilds the engine from the store: tokens and
    /// orders not read back yet must not answer 401 or 404. `Retry-After: 1`.
    Recovering,
    /// 410 `gone`: a share link that existed but no longer works (expired, revoked, or
    /// its order finished a while ago).
    Gone(String),
    /// Something that should not happen (a bug): 500 `internal`, logged with its detail.
    Internal(String),
}

impl ApiError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        ApiError::Engine(EngineError::InvalidInput(msg.into()))
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        ApiError::Engine(EngineError::Forbidden(msg.into()))
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        ApiError::Engine(EngineError::NotFound(msg.into()))
    }

    pub fn unavailable(msg: impl Into<String>) -> Self {
        ApiError::Engine(EngineError::Unavailable(msg.into()))
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        ApiError::Internal(msg.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Engine(e) => e.code(),
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::UsernameTaken => "username_taken",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::RequestInProgress => "request_in_progress",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::LimitReached(_) => "limit_reached",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Busy { .. } | ApiError::Recovering => "unavailable",
            ApiError::Gone(_) => "gone",
            ApiError::Internal(_) => "internal",
        }
    }

    /// Seconds for the `Retry-After` header, on the refusals that are "not now".
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_s } | ApiError::Busy { retry_after_s } => {
                Some((*retry_after_s).max(1))
            }
            ApiError::Recovering => Some(1),
            _ => None,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Engine(e) => write!(f, "{e}"),
            ApiError::Unauthorized(m) => f.write_str(m),
            ApiError::UsernameTaken => f.write_str("that username is taken"),
            ApiError::IdempotencyKeyReused => {
                f.write_str("this Idempotency-Key was used with a different request body")
            }
            ApiError::RequestInProgress => {
                f.write_str("a request with this Idempotency-Key is still in progress")
            }
            ApiError::PayloadTooLarge => f.write_str("request body is over 64 KiB"),
            ApiError::LimitReached(m) => f.write_str(m),
            ApiError::RateLimited { .. } => f.write_str("too many requests; slow down"),
            ApiError::Busy { .. } => f.write_str("the server is busy; retry shortly"),
            ApiError::Recovering => {
                f.write_str("the server is reading its state back after a restart; retry shortly")
            }
            ApiError::Gone(m) => f.write_str(m),
            // The detail goes to the log, not to the client.
            ApiError::Internal(_) => f.write_str("internal error"),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::Engine(e)
    }
}

/// The store's own errors, where a handler talks to the store directly (idempotency keys,
/// tokens): the same mapping the engine uses for its writes.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => ApiError::unavailable(m),
            StoreError::Conflict(_) => ApiError::Engine(EngineError::InvalidTransition(
                "the order was changed elsewhere".into(),
            )),
            // Another node owns the zone now (docs/cluster.md, "Fencing"): a retry reaches it.
            StoreError::Fenced(z) => ApiError::unavailable(format!("zone {z} moved, retry")),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Engine(e) => match e {
                EngineError::InvalidInput(_) => StatusCode::BAD_REQUEST,
                EngineError::NotFound(_) => StatusCode::NOT_FOUND,
                EngineError::Forbidden(_) => StatusCode::FORBIDDEN,
                EngineError::InvalidTransition(_)
                | EngineError::MerchantClosed
                | EngineError::ItemUnavailable(_)
                | EngineError::RiderUnavailable(_)
                | EngineError::OfferNotAvailable => StatusCode::CONFLICT,
                EngineError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::UsernameTaken
            | ApiError::IdempotencyKeyReused
            | ApiError::RequestInProgress
            | ApiError::LimitReached(_) => StatusCode::CONFLICT,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Busy { .. } | ApiError::Recovering => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
        }
        let mut r = HttpResponse::build(self.status_code());
        if let Some(s) = self.retry_after_s() {
            r.insert_header((actix_web::http::header::RETRY_AFTER, s.to_string()));
        }
        r.json(error_body(self.code(), &self.to_string()))
    }
}

/// Every error answer's body, the shape docs/protocol.md gives (and the OpenAPI document's
/// error schema, src/api_doc).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// `invalid_input`, `unauthorized`, `forbidden`, `not_found`, a 409 conflict's code,
    /// `payload_too_large`, `rate_limited`, `unavailable` or `internal`.
    #[schema(example = "invalid_input")]
    pub code: String,
    /// For people, not for programs.
    pub message: String,
}

pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!(ErrorBody {
        error: ErrorDetail {
            code: code.into(),
            message: message.into(),
        },
    })
}

/// actix-web's own extractor errors (bad query strings, paths) in the protocol's shape.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::invalid(err.to_string()).into()
}

pub fn path_error(
    err: actix_web::error::PathError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::invalid(err.to_string()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(e: ApiError) -> (u16, String) {
        let r = e.error_response();
        let status = r.status().as_u16();
        let body = actix_web::body::to_bytes(r.into_body());
        let body = futures_util::FutureExt::now_or_never(body)
            .expect("a JSON body is ready at once")
            .expect("readable");
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[test]
    fn a_bug_is_500_internal_and_keeps_its_detail_out_of_the_answer() {
        let (status, body) = answer(ApiError::internal("serializer exploded"));
        assert_eq!(status, 500);
        assert_eq!(
            body,
            r#"{"error":{"code":"internal","message":"internal error"}}"#
        );
    }

    #[test]
    fn not_now_refusals_carry_retry_after() {
        let r = ApiError::RateLimited { retry_after_s: 7 }.error_response();
        assert_eq!(r.status().as_u16(), 429);
        assert_eq!(r.headers().get("retry-after").unwrap(), "7");
        let r = ApiError::Busy { retry_after_s: 0 }.error_response();
        assert_eq!(r.status().as_u16(), 503);
        assert_eq!(r.headers().get("retry-after").unwrap(), "1");
        let (_, body) = answer(ApiError::Busy { retry_after_s: 1 });
        assert!(body.contains(r#""code":"unavailable""#), "{body}");
        assert!(ApiError::invalid("x")
            .error_response()
            .headers()
            .get("retry-after")
            .is_none());
    }

    #[test]
    fn only_the_store_being_away_is_503_unavailable() {
        let (status, body) = answer(StoreError::Unavailable("redis: timed out".into()).into());
        assert_eq!(status, 503);
        assert!(body.contains(r#""code":"unavailable""#), "{body}");
        let (status, body) = answer(StoreError::Conflict("o_1".into()).into());
        assert_eq!(status, 409);
        assert!(body.contains(r#""code":"invalid_transition""#), "{body}");
        let (status, body) = answer(StoreError::Fenced("872a1072bffffff".into()).into());
        assert_eq!(status, 503);
        assert!(body.contains("zone 872a1072bffffff moved, retry"), "{body}");
    }
}
