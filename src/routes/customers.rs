//! Customer registration and login (rate limited per IP; failed logins slow down).

use crate::errors::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::{post, web, FromRequest, HttpRequest, HttpResponse};
use dispatch_actors::domain::CustomerId;
use futures_util::future::{ready, Ready};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct Credentials {
    /// 1–128 characters.
    pub username: String,
    /// 1–256 characters.
    pub password: String,
}

/// A customer's token, from registration or login.
#[derive(Serialize, ToSchema)]
pub struct CustomerSession {
    pub customer_id: CustomerId,
    pub token: String,
}

impl Credentials {
    /// Any non-empty username and password within sane sizes (the contract sets no rules).
    pub fn checked(self) -> Result<Self, ApiError> {
        let n = self.username.chars().count();
        if !(1..=128).contains(&n) || self.username.trim().is_empty() {
            return Err(ApiError::invalid("username must be 1-128 characters"));
        }
        let p = self.password.chars().count();
        if !(1..=256).contains(&p) {
            return Err(ApiError::invalid("password must be 1-256 characters"));
        }
        Ok(self)
    }
}

/// A registration or login attempt within the per-IP limit. The limit counts malformed
/// attempts too, so it is an extractor that comes before the body.
pub struct AuthAttempt;

impl FromRequest for AuthAttempt {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(ApiError::internal("application state not registered")));
        };
        let Some(ip) = req.peer_addr().map(|a| a.ip()) else {
            return ready(Ok(AuthAttempt));
        };
        ready(match state.auth_limiter.check(&ip) {
            Ok(()) => Ok(AuthAttempt),
            Err(wait) => {
                metrics::counter!(dispatch_actors::metric_names::RATE_LIMITED_TOTAL, "what" => "auth")
                    .increment(1);
                Err(ApiError::RateLimited {
                    retry_after_s: crate::ratelimit::retry_after_s(wait),
                })
            }
        })
    }
}

#[utoipa::path(
    operation_id = "register_customer",
    tag = "customers",
    request_body = Credentials,
    responses(
        (status = 201, description = "Registered; the token is the customer's", body = CustomerSession),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 409, description = "`username_taken`", body = ErrorBody),
        (status = 429, description = "`rate_limited` (per IP), with Retry-After", body = ErrorBody),
        (status = 503, description = "`unavailable`: the hashing pool is full, with Retry-After", body = ErrorBody),
    )
)]
#[post("/customers")]
pub async fn register(
    _: AuthAttempt,
    body: Result<Json<Credentials>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let c = body?.value.checked()?;
    // Hashed on the bounded pool (src/password.rs): a full queue answers 503 + Retry-After.
    let (customer_id, token) = state.auth.register(&c.username, &c.password).await?;
    state.auth.commit_registration(&c.username, &token).await?;
    Ok(HttpResponse::Created().json(CustomerSession { customer_id, token }))
}

/// Logins wait longer after each failure (src/login_guard.rs): an attempt inside the wait
/// is 429 with Retry-After and never reaches the password check.
#[utoipa::path(
    operation_id = "login",
    tag = "customers",
    request_body = Credentials,
    responses(
        (status = 200, description = "Logged in", body = CustomerSession),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: wrong username or password", body = ErrorBody),
        (status = 429, description = "`rate_limited`: per IP, or waiting after failed logins; with Retry-After", body = ErrorBody),
        (status = 503, description = "`unavailable`: the hashing pool is full, with Retry-After", body = ErrorBody),
    )
)]
#[post("/sessions")]
pub async fn login(
    _: AuthAttempt,
    req: HttpRequest,
    body: Result<Json<Credentials>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let c = body?.value;
    let ip = req.peer_addr().map(|a| a.ip());
    if let Err(wait) = state.login_guard.check(&c.username, ip) {
        metrics::counter!(dispatch_actors::metric_names::RATE_LIMITED_TOTAL, "what" => "login_failures")
            .increment(1);
        return Err(ApiError::RateLimited {
            retry_after_s: crate::ratelimit::retry_after_s(wait),
        });
    }
    let (customer_id, token) = match state.auth.login(&c.username, &c.password).await {
        Ok(ok) => ok,
        Err(e @ ApiError::Unauthorized(_)) => {
            state.login_guard.failed(&c.username, ip);
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    state.login_guard.succeeded(&c.username);
    state.auth.commit_login(&token).await?;
    Ok(HttpResponse::Ok().json(CustomerSession { customer_id, token }))
}
