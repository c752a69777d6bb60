//! A rider's tracking-app devices (docs/protocol.md, "Tracking apps"): registered by the
//! dispatcher or the rider itself, revoked the same way. The device id is a secret, shown
//! once, in the answer that creates it.

use crate::auth::Principal;
use crate::errors::{ApiError, ErrorBody};
use crate::extract::Caller;
use crate::state::AppState;
use actix_web::{delete, post, web, HttpResponse};
use dispatch_actors::domain::RiderId;
use serde::Serialize;
use utoipa::ToSchema;

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

/// A new tracking-app device.
#[derive(Serialize, ToSchema)]
pub struct DeviceCreated {
    /// 24 random lowercase letters and digits; shown only here.
    pub device_id: String,
}

/// `POST /riders/{id}/devices` → 201 `{device_id}`.
#[utoipa::path(
    operation_id = "register_device",
    tag = "tracking apps",
    params(("id" = RiderId, Path, description = "The rider")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Registered; no body needed", body = DeviceCreated),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the dispatcher or that rider only", body = ErrorBody),
        (status = 404, description = "`not_found`: no such rider", body = ErrorBody),
    )
)]
#[post("/riders/{id}/devices")]
pub async fn register(
    Caller(who): Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rider = managed_rider(&who, &path)?;
    state.engine.rider(&rider).await?;
    let device = state.intake.devices.register(&rider).await?;
    Ok(HttpResponse::Created().json(DeviceCreated {
        device_id: device.expose().to_string(),
    }))
}

/// `DELETE /riders/{id}/devices/{device_id}` → 204; its fixes are refused from now on.
#[utoipa::path(
    operation_id = "revoke_device",
    tag = "tracking apps",
    params(
        ("id" = RiderId, Path, description = "The rider"),
        ("device_id" = String, Path, description = "One of its devices"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked: its fixes are refused from now on"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the dispatcher or that rider only", body = ErrorBody),
        (status = 404, description = "`not_found`: not a device of that rider", body = ErrorBody),
    )
)]
#[delete("/riders/{id}/devices/{device_id}")]
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
