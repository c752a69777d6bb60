//! One error type for every handler, mapped to HTTP in exactly one place
//! (PROTOCOL.md, "Errors"): `{"error": {"code": "…", "message": "…"}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use dispatch_actors::EngineError;
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
    RateLimited,
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

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Engine(e) => e.code(),
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::UsernameTaken => "username_taken",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::RequestInProgress => "request_in_progress",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::RateLimited => "rate_limited",
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
            ApiError::RateLimited => f.write_str("too many requests; slow down"),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::Engine(e)
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
            | ApiError::RequestInProgress => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(error_body(self.code(), &self.to_string()))
    }
}

pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({"error": {"code": code, "message": message}})
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
