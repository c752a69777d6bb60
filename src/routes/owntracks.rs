//! `POST /api/v1/owntracks`: OwnTracks in HTTP mode (docs/protocol.md, "Tracking apps").
//! Basic auth names the rider (user) and one of its devices (password); the body is the
//! app's JSON. A location answers 200 `[]` (the app reads the array as messages for it:
//! there are none) once it is the rider's position; other `_type`s are answered the same
//! and ignored.

use crate::errors::{ApiError, ErrorBody};
use crate::extract::read_body;
use crate::ingest::intake::record;
use crate::ingest::{owntracks, Outcome, Source};
use crate::state::AppState;
use actix_web::http::header::Header;
use actix_web::{post, web, HttpRequest, HttpResponse};
use actix_web_httpauth::headers::authorization::{Authorization, Basic};
use dispatch_actors::domain::RiderId;
use serde_json::json;

#[utoipa::path(
    operation_id = "owntracks_report",
    tag = "tracking apps",
    request_body(content = serde_json::Value, description = "An OwnTracks message (`_type` `location`, with `lat`, `lon`, `tst`; other types are ignored)", content_type = "application/json"),
    security(("owntracks" = [])),
    responses(
        (status = 200, description = "`[]`: no messages for the app", body = Vec<serde_json::Value>),
        (status = 400, description = "`invalid_input`: not OwnTracks JSON, or an invalid fix", body = ErrorBody),
        (status = 401, description = "`unauthorized`: Basic auth must name a rider and one of its devices", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over the rider's fix rate", body = ErrorBody),
        (status = 503, description = "`unavailable`: retry", body = ErrorBody),
    )
)]
#[post("/owntracks")]
pub async fn report(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let auth = Authorization::<Basic>::parse(&req)
        .map_err(|_| ApiError::Unauthorized("Basic auth with rider id and device id".into()))?
        .into_scheme();
    let device = auth.password().map(|p| p.to_string()).unwrap_or_default();
    let known = match RiderId::parse(auth.user_id()) {
        Ok(rider) => state.intake.identify(&device, Some(&rider)).await,
        Err(_) => Err(Outcome::UnknownDevice),
    };
    let rider = match known {
        Ok(rider) => rider,
        Err(refused) => {
            record(Source::OwnTracksHttp, &refused);
            return Err(match refused {
                Outcome::Unavailable => {
                    ApiError::unavailable("devices are still being restored; retry")
                }
                _ => ApiError::Unauthorized("unknown rider, or not a device of that rider".into()),
            });
        }
    };
    let body = read_body(body).await?;
    let parsed = match owntracks::parse(&body) {
        Ok(None) => return Ok(nothing_for_you()),
        Ok(Some(mut fix)) => {
            fix.device_id = Some(device);
            Ok(fix)
        }
        Err(e) => Err(e),
    };
    state
        .intake
        .submit(Source::OwnTracksHttp, parsed, Some(&rider))
        .await
        .into_result()?;
    Ok(nothing_for_you())
}

/// OwnTracks reads the answer as a list of messages to show: none.
fn nothing_for_you() -> HttpResponse {
    HttpResponse::Ok().json(json!([]))
}
