//! The OsmAnd / Traccar Client listener (`ingest.osmand_bind`): `GET` or `POST /` with the
//! OsmAnd fields in the query string or a form body, or Traccar Client's JSON body
//! (docs/protocol.md, "Tracking apps"). 200 once the fix is the rider's position; 400
//! invalid; 404 unknown or revoked device; 429 over the rider's fix rate limit.

use crate::errors::ApiError;
use crate::extract::read_body;
use crate::ingest::{osmand, traccar_json, Source};
use crate::state::AppState;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse};

pub async fn report(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(body).await?;
    let (source, parsed) = if is_json(&req, &body) {
        (Source::TraccarJson, traccar_json::parse(&body))
    } else {
        (
            Source::OsmAnd,
            osmand::parse_request(req.query_string(), &body),
        )
    };
    state
        .intake
        .submit(source, parsed, None)
        .await
        .into_result()?;
    Ok(HttpResponse::Ok().finish())
}

/// Traccar Client 9 sends JSON; older versions and OsmAnd send fields. The content type
/// decides, or else the body's first character.
fn is_json(req: &HttpRequest, body: &[u8]) -> bool {
    let declared = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    declared || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// The listener's routes: the report at `/`, nothing else.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(report))
        .route("/", web::post().to(report))
        .default_service(web::to(super::ops::not_found));
}
