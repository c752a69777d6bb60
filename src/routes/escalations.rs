//! Escalations for the dispatcher. With several nodes, every node's (docs/cluster.md):
//! the engine lists those heard and forwards a resolution to the node holding it.

use crate::errors::{ApiError, ErrorBody};
use crate::extract::{Dispatcher, Json};
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::{get, post, web, FromRequest, HttpRequest, HttpResponse};
use dispatch_actors::domain::escalation::Escalation;
use dispatch_actors::domain::EscalationId;
use futures_util::future::{ready, Ready};
use serde::Deserialize;
use std::collections::HashMap;
use utoipa::ToSchema;

#[utoipa::path(
    operation_id = "list_escalations",
    tag = "escalations",
    params(("open" = Option<bool>, Query, description = "true: open ones only; absent or false: all")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Escalations, newest first", body = Vec<Escalation>),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: dispatcher only", body = ErrorBody),
    )
)]
#[get("/escalations")]
pub async fn list(
    _: Dispatcher,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let open_only = open_only(&query)?;
    Ok(HttpResponse::Ok().json(state.engine.escalations(open_only).await?))
}

/// `?open=true|false` (absent: false).
pub fn open_only(query: &HashMap<String, String>) -> Result<bool, ApiError> {
    match query.get("open").map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::invalid("open must be true or false")),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct ResolveBody {
    pub note: Option<String>,
}

/// The escalation named in the path (decoded as `web::Path` decodes it); a string that
/// cannot be an escalation id is 404, as an unknown one is.
pub struct EscalationPath(EscalationId);

impl FromRequest for EscalationPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let raw: String = req.match_info().load().unwrap_or_default();
        ready(
            EscalationId::parse(&raw)
                .map(EscalationPath)
                .map_err(|_| ApiError::not_found(format!("escalation {raw}"))),
        )
    }
}

#[utoipa::path(
    operation_id = "resolve_escalation",
    tag = "escalations",
    params(("id" = EscalationId, Path, description = "The escalation")),
    request_body = ResolveBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Resolved by the dispatcher", body = Escalation),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: dispatcher only", body = ErrorBody),
        (status = 404, description = "`not_found`: no node holds it", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store is unavailable, or (several nodes) the node holding the escalation did not answer; nothing was changed, retry", body = ErrorBody),
    )
)]
#[post("/escalations/{id}/resolve")]
pub async fn resolve(
    _: Dispatcher,
    escalation: EscalationPath,
    body: Result<Json<ResolveBody>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let b = body?.value;
    Ok(HttpResponse::Ok().json(
        state
            .engine
            .resolve_escalation(escalation.0, b.note)
            .await?,
    ))
}
