//! A rider's tokens, for the dispatcher: issue a new one (after an expiry or a lost
//! phone) and revoke them all (a stolen phone, a rider let go). Revoking closes the
//! rider's open socket with a close frame saying why.

use crate::auth::Principal;
use crate::errors::{ApiError, ErrorBody};
use crate::extract::Dispatcher;
use crate::state::AppState;
use actix_web::{delete, post, web, HttpResponse};
use dispatch_actors::domain::RiderId;
use serde::Serialize;
use utoipa::ToSchema;

/// The rider in the path, if it exists (a string that cannot be a rider id is 404 too).
/// The rider, wherever its actor lives (several nodes: any node issues and revokes its
/// tokens, which every node honours at once).
async fn rider(state: &AppState, raw: &str) -> Result<RiderId, ApiError> {
    let id = RiderId::parse(raw).map_err(|_| ApiError::not_found("no such rider"))?;
    if state.engine.rider_exists(&id).await? {
        Ok(id)
    } else {
        Err(dispatch_actors::EngineError::NotFound(format!("rider {id}")).into())
    }
}

/// A rider's new token.
#[derive(Serialize, ToSchema)]
pub struct RiderToken {
    pub rider_id: RiderId,
    pub token: String,
    /// When it expires (`auth.token_ttl_s`); null: never.
    pub expires_ms: Option<u64>,
}

/// What revoking a rider's tokens did.
#[derive(Serialize, ToSchema)]
pub struct TokensRevoked {
    pub rider_id: RiderId,
    pub revoked: usize,
    /// Its open sockets, closed with 1008 `token revoked`.
    pub sockets_closed: usize,
}

/// `POST /riders/{id}/tokens` → 201 `{rider_id, token, expires_ms}`.
#[utoipa::path(
    operation_id = "issue_rider_token",
    tag = "riders",
    params(("id" = RiderId, Path, description = "The rider")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "A new token (after an expiry or a lost phone)", body = RiderToken),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: dispatcher only", body = ErrorBody),
        (status = 404, description = "`not_found`: no such rider", body = ErrorBody),
    )
)]
#[post("/riders/{id}/tokens")]
pub async fn issue(
    _: Dispatcher,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = rider(&state, &path).await?;
    let token = state
        .auth
        .issue_durable(Principal::Rider(id.clone()))
        .await?;
    let expires_ms = state.auth.lookup_grant(&token).and_then(|g| g.expires_ms);
    Ok(HttpResponse::Created().json(RiderToken {
        rider_id: id,
        token,
        expires_ms,
    }))
}

/// `DELETE /riders/{id}/tokens` → 200 `{rider_id, revoked, sockets_closed}`.
#[utoipa::path(
    operation_id = "revoke_rider_tokens",
    tag = "riders",
    params(("id" = RiderId, Path, description = "The rider")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every token of the rider revoked, its sockets closed", body = TokensRevoked),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: dispatcher only", body = ErrorBody),
        (status = 404, description = "`not_found`: no such rider", body = ErrorBody),
    )
)]
#[delete("/riders/{id}/tokens")]
pub async fn revoke(
    _: Dispatcher,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = rider(&state, &path).await?;
    let revoked = state.auth.revoke_rider(&id).await?;
    let closed = state
        .sockets
        .end_all(&Principal::Rider(id.clone()), "token revoked");
    Ok(HttpResponse::Ok().json(TokensRevoked {
        rider_id: id,
        revoked,
        sockets_closed: closed,
    }))
}
