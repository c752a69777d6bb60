//! Escalations for the dispatcher.

use crate::errors::ApiError;
use crate::extract::{Dispatcher, Json};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use dispatch_actors::domain::EscalationId;
use serde::Deserialize;
use std::collections::HashMap;

pub async fn list(
    _: Dispatcher,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let open_only = match query.get("open").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("open must be true or false")),
    };
    Ok(HttpResponse::Ok().json(state.engine.escalations(open_only).await?))
}

#[derive(Deserialize)]
pub struct ResolveBody {
    note: Option<String>,
}

pub async fn resolve(
    _: Dispatcher,
    path: web::Path<String>,
    body: Result<Json<ResolveBody>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = EscalationId::parse(&path)
        .map_err(|_| ApiError::not_found(format!("escalation {path}")))?;
    let b = body?.value;
    Ok(HttpResponse::Ok().json(state.engine.resolve_escalation(id, b.note).await?))
}
