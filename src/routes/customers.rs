//! Customer registration and login (rate limited per IP).

use crate::errors::ApiError;
use crate::extract::Json;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::future::{ready, Ready};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
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
        let ip = req
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        ready(if state.auth_limiter.allow(&ip) {
            Ok(AuthAttempt)
        } else {
            metrics::counter!(dispatch_actors::metric_names::RATE_LIMITED_TOTAL, "what" => "auth")
                .increment(1);
            Err(ApiError::RateLimited)
        })
    }
}

pub async fn register(
    _: AuthAttempt,
    body: Result<Json<Credentials>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let c = body?.value.checked()?;
    let auth = state.clone();
    let username = c.username.clone();
    let (customer_id, token) = web::block(move || auth.auth.register(&c.username, &c.password))
        .await
        .map_err(|e| ApiError::internal(format!("password hashing task: {e}")))??;
    state.auth.commit_registration(&username, &token).await?;
    Ok(HttpResponse::Created().json(json!({"customer_id": customer_id, "token": token})))
}

pub async fn login(
    _: AuthAttempt,
    body: Result<Json<Credentials>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let c = body?.value;
    let auth = state.clone();
    let (customer_id, token) = web::block(move || auth.auth.login(&c.username, &c.password))
        .await
        .map_err(|e| ApiError::internal(format!("password check task: {e}")))??;
    state.auth.commit_login(&token).await?;
    Ok(HttpResponse::Ok().json(json!({"customer_id": customer_id, "token": token})))
}
