//! `/healthz`, `/readyz`, `/metrics`, and the JSON 404.

use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;
use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use std::sync::atomic::Ordering;
use utoipa::ToSchema;

/// A probe's answer.
#[derive(Serialize, ToSchema)]
pub struct Probe {
    /// `ok` (healthz) or `ready` (readyz).
    pub status: &'static str,
}

#[utoipa::path(
    operation_id = "healthz",
    tag = "operations",
    responses((status = 200, description = "The process runs", body = Probe))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Probe { status: "ok" })
}

/// 200 when the store answers and the server is not draining.
#[utoipa::path(
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Can serve", body = Probe),
        (status = 503, description = "`unavailable`: draining, or the store is unreachable or still restoring", body = ErrorBody),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let draining = state.draining.load(Ordering::SeqCst);
    let store_ok = state.engine.store().healthy().await;
    if !draining && store_ok {
        HttpResponse::Ok().json(Probe { status: "ready" })
    } else {
        let why = if draining {
            "draining"
        } else {
            "store unreachable"
        };
        HttpResponse::ServiceUnavailable().json(crate::errors::error_body("unavailable", why))
    }
}

#[utoipa::path(
    operation_id = "metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition (docs/operations.md)", content_type = "text/plain; version=0.0.4", body = String))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("no such route"))
}
