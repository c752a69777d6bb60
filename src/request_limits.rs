//! Rate limits on every request of the main listener (REST, socket upgrades, pages): per
//! client IP (`rate_limit.per_ip_per_s`, burst `per_ip_burst`) and per token holder
//! (`rate_limit.per_token_per_s`, burst `per_token_burst`; every token of one rider,
//! merchant or customer shares one budget). Over either: 429 `rate_limited` with
//! `Retry-After`, counted in `dispatch_rate_limited_total{what="ip"|"token"}`.
//!
//! Probes and the scrape are not limited (a load balancer polls them from one address).
//! The dispatcher's configured token is limited per IP only: it is an operator credential,
//! and tools that build a city with it make thousands of calls at once.

use crate::auth::{request_token, Principal};
use crate::errors::ApiError;
use crate::ratelimit::retry_after_s;
use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use dispatch_actors::metric_names;
use std::time::Duration;

/// The middleware (`actix_web::middleware::from_fn(limit)`).
pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        check(state, &req)?;
    }
    next.call(req).await
}

fn refused(what: &'static str, wait: Duration) -> ApiError {
    metrics::counter!(metric_names::RATE_LIMITED_TOTAL, "what" => what).increment(1);
    ApiError::RateLimited {
        retry_after_s: retry_after_s(wait),
    }
}

fn check(state: &AppState, req: &ServiceRequest) -> Result<(), ApiError> {
    let path = req.path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return Ok(());
    }
    if let Some(addr) = req.peer_addr() {
        state
            .ip_limiter
            .check(&addr.ip())
            .map_err(|w| refused("ip", w))?;
    }
    // Sockets may name their token in the query (browsers cannot set headers there).
    let token = request_token(req.request(), path.starts_with("/ws/"));
    match token.and_then(|t| state.auth.lookup(&t)) {
        // No token, or one that names nobody: the route answers 401; the IP limit holds.
        None | Some(Principal::Dispatcher) => Ok(()),
        Some(who) => state
            .holder_limiter
            .check(&who.scope())
            .map_err(|w| refused("token", w)),
    }
}
