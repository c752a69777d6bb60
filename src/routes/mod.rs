//! REST under `/api/v1`, operations endpoints and pages. Bodies are read here with a hard
//! 64 KiB cap and parsed into typed requests; ids are parsed at the edge.

pub mod customers;
pub mod escalations;
pub mod merchants;
pub mod ops;
pub mod orders;
pub mod pages;
pub mod riders;

use crate::auth::Principal;
use crate::errors::ApiError;
use actix_web::web;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Reads a request body, refusing more than 64 KiB (413) without buffering it.
pub async fn read_body(mut payload: web::Payload) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            actix_web::error::PayloadError::Overflow => ApiError::PayloadTooLarge,
            other => ApiError::invalid(format!("could not read body: {other}")),
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses JSON; an empty body reads as `{}` so optional-only bodies may be omitted.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
}

pub fn require_dispatcher(p: &Principal) -> Result<(), ApiError> {
    match p {
        Principal::Dispatcher => Ok(()),
        _ => Err(ApiError::forbidden("dispatcher only")),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .route("/customers", web::post().to(customers::register))
            .route("/sessions", web::post().to(customers::login))
            .route("/merchants", web::post().to(merchants::create))
            .route("/merchants/{id}/open", web::put().to(merchants::set_open))
            .route("/merchants/{id}/items", web::post().to(merchants::add_item))
            .route(
                "/merchants/{id}/items",
                web::get().to(merchants::list_items),
            )
            .route(
                "/merchants/{id}/items/{item_id}",
                web::patch().to(merchants::update_item),
            )
            .route("/riders", web::post().to(riders::create))
            .route("/riders", web::get().to(riders::list))
            .route("/riders/nearby", web::get().to(riders::nearby))
            .route("/orders", web::post().to(orders::create))
            .route("/orders/{id}", web::get().to(orders::get))
            .route("/orders/{id}/pay", web::post().to(orders::pay))
            .route("/orders/{id}/accept", web::post().to(orders::accept))
            .route("/orders/{id}/reject", web::post().to(orders::reject))
            .route("/orders/{id}/ready", web::post().to(orders::ready))
            .route("/orders/{id}/cancel", web::post().to(orders::cancel))
            .route("/orders/{id}/assign", web::post().to(orders::assign))
            .route("/orders/{id}/unassign", web::post().to(orders::unassign))
            .route("/orders/{id}/fail", web::post().to(orders::fail))
            .route("/orders/{id}/trace", web::get().to(orders::trace))
            .route("/escalations", web::get().to(escalations::list))
            .route(
                "/escalations/{id}/resolve",
                web::post().to(escalations::resolve),
            )
            .default_service(web::to(ops::not_found)),
    )
    .route("/ws/rider", web::get().to(crate::ws::rider::connect))
    .route("/ws/merchant", web::get().to(crate::ws::merchant::connect))
    .route(
        "/ws/orders/{id}/track",
        web::get().to(crate::ws::track::connect),
    )
    .route("/ws/dispatch", web::get().to(crate::ws::dispatch::connect))
    .route("/healthz", web::get().to(ops::healthz))
    .route("/readyz", web::get().to(ops::readyz))
    .route("/metrics", web::get().to(ops::metrics))
    .route("/", web::get().to(pages::dashboard))
    .route("/track/{id}", web::get().to(pages::track))
    .route("/rider", web::get().to(pages::rider))
    .service(actix_files::Files::new("/static", pages::static_dir()))
    .default_service(web::to(ops::not_found));
}
