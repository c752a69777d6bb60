//! A rider's tokens, for the dispatcher: issue a new one (after an expiry or a lost
//! phone) and revoke them all (a stolen phone, a rider let go). Revoking closes the
//! rider's open socket with a close frame saying why.

use crate::auth::Principal;
use crate::errors::ApiError;
use crate::extract::Dispatcher;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use dispatch_actors::domain::RiderId;
use serde_json::json;

/// The rider in the path, if it exists (a string that cannot be a rider id is 404 too).
fn rider(state: &AppState, raw: &str) -> Result<RiderId, ApiError> {
    let id = RiderId::parse(raw).map_err(|_| ApiError::not_found("no such rider"))?;
    state.engine.rider_handle(&id)?;
    Ok(id)
}

/// `POST /riders/{id}/tokens` → 201 `{rider_id, token, expires_ms}`.
pub async fn issue(
    _: Dispatcher,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = rider(&state, &path)?;
    let token = state
        .auth
        .issue_durable(Principal::Rider(id.clone()))
        .await?;
    let expires_ms = state.auth.lookup_grant(&token).and_then(|g| g.expires_ms);
    Ok(HttpResponse::Created()
        .json(json!({"rider_id": id, "token": token, "expires_ms": expires_ms})))
}

/// `DELETE /riders/{id}/tokens` → 200 `{rider_id, revoked, sockets_closed}`.
pub async fn revoke(
    _: Dispatcher,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = rider(&state, &path)?;
    let revoked = state.auth.revoke_rider(&id).await?;
    let closed = state
        .sockets
        .end_all(&Principal::Rider(id.clone()), "token revoked");
    Ok(HttpResponse::Ok()
        .json(json!({"rider_id": id, "revoked": revoked, "sockets_closed": closed})))
}
