//! Escalations for the dispatcher.

use super::{parse_json, read_body, require_dispatcher};
use crate::errors::ApiError;
use crate::startup::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use dispatch_actors::domain::EscalationId;
use serde::Deserialize;
use std::collections::HashMap;

pub async fn list(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_dispatcher(&state.auth.authenticate(&req, false)?)?;
    let open_only = match query.get("open").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("open must be true or false")),
    };
    Ok(HttpResponse::Ok().json(state.engine.escalations(open_only).await?))
}

#[derive(Deserialize)]
struct ResolveBody {
    note: Option<String>,
}

pub async fn resolve(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_dispatcher(&state.auth.authenticate(&req, false)?)?;
    let id = EscalationId::parse(&path)
        .map_err(|_| ApiError::not_found(format!("escalation {path}")))?;
    let b: ResolveBody = parse_json(&read_body(body).await?)?;
    Ok(HttpResponse::Ok().json(state.engine.resolve_escalation(id, b.note).await?))
}
