//! `/healthz`, `/readyz`, `/metrics`, and the JSON 404.

use crate::errors::ApiError;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use std::sync::atomic::Ordering;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// 200 when the store answers and the server is not draining.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let draining = state.draining.load(Ordering::SeqCst);
    let store_ok = state.engine.store().healthy().await;
    if !draining && store_ok {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        let why = if draining {
            "draining"
        } else {
            "store unreachable"
        };
        HttpResponse::ServiceUnavailable().json(crate::errors::error_body("unavailable", why))
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("no such route"))
}
