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

/// Why the server is not ready (draining, or the store does not answer), if it is not.
async fn not_ready(state: &AppState) -> Option<&'static str> {
    if state.draining.load(Ordering::SeqCst) {
        return Some("draining");
    }
    // A node of a cluster serves only once it has joined the others: before that it
    // cannot reach an order, rider or merchant living on another node.
    if state.settings.cluster.enabled && !state.engine.joined() {
        return Some("not joined to the cluster yet");
    }
    (!state.engine.store().healthy().await).then_some("store unreachable")
}

/// 200 when the store answers and the server is not draining.
#[utoipa::path(
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Can serve", body = Probe),
        (status = 503, description = "`unavailable`: draining, or the store is unreachable or still restoring, or (a node of a cluster) not joined to the others yet", body = ErrorBody),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let why = not_ready(&state).await;
    if why.is_none() {
        HttpResponse::Ok().json(Probe { status: "ready" })
    } else {
        let why = why.unwrap_or_default();
        HttpResponse::ServiceUnavailable().json(crate::errors::error_body("unavailable", why))
    }
}

/// The scrape. `dispatch_ready` is what `/readyz` would answer now (1 ready, 0 not), set
/// here so it is as fresh as the scrape that reads it.
#[utoipa::path(
    operation_id = "metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition (docs/operations.md)", content_type = "text/plain; version=0.0.4", body = String))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let ready = not_ready(&state).await.is_none();
    ::metrics::gauge!(dispatch_actors::metric_names::READY).set(if ready { 1.0 } else { 0.0 });
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("no such route"))
}
