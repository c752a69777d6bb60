//! A rider's tracking-app devices (docs/protocol.md, "Tracking apps"): registered by the
//! dispatcher or the rider itself, revoked the same way. The device id is a secret, shown
//! once, in the answer that creates it.

use crate::auth::Principal;
use crate::errors::ApiError;
use crate::extract::Caller;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use dispatch_actors::domain::RiderId;
use serde_json::json;

/// The rider `id` names, if the caller may manage its devices: the dispatcher, or that
/// rider. A malformed id is 404 (as everywhere), another's 403.
fn managed_rider(caller: &Principal, id: &str) -> Result<RiderId, ApiError> {
    let rider = RiderId::parse(id).map_err(|_| ApiError::not_found("no such rider"))?;
    match caller {
        Principal::Dispatcher => Ok(rider),
        Principal::Rider(me) if *me == rider => Ok(rider),
        _ => Err(ApiError::forbidden(
            "only the dispatcher or the rider itself",
        )),
    }
}

/// `POST /riders/{id}/devices` → 201 `{device_id}`.
pub async fn register(
    Caller(who): Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rider = managed_rider(&who, &path)?;
    state.engine.rider(&rider).await?;
    let device = state.intake.devices.register(&rider).await?;
    Ok(HttpResponse::Created().json(json!({ "device_id": device.expose() })))
}

/// `DELETE /riders/{id}/devices/{device_id}` → 204; its fixes are refused from now on.
pub async fn revoke(
    Caller(who): Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (id, device) = path.into_inner();
    let rider = managed_rider(&who, &id)?;
    state.intake.devices.revoke(&rider, &device).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dispatcher_or_the_rider_itself_manages_its_devices() {
        let me = RiderId::parse("r_me").unwrap();
        assert_eq!(
            managed_rider(&Principal::Dispatcher, "r_me"),
            Ok(me.clone())
        );
        assert_eq!(
            managed_rider(&Principal::Rider(me.clone()), "r_me"),
            Ok(me.clone())
        );
        let other = Principal::Rider(RiderId::parse("r_other").unwrap());
        assert_eq!(
            managed_rider(&other, "r_me").unwrap_err().code(),
            "forbidden"
        );
        let merchant =
            Principal::Merchant(dispatch_actors::domain::MerchantId::parse("m_x").unwrap());
        assert_eq!(
            managed_rider(&merchant, "r_me").unwrap_err().code(),
            "forbidden"
        );
        assert_eq!(
            managed_rider(&Principal::Dispatcher, "o_1")
                .unwrap_err()
                .code(),
            "not_found"
        );
    }
}
