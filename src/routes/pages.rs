//! The browser pages: dashboard, tracking page, rider simulator, API reference (files
//! under static/).

use actix_files::NamedFile;
use actix_web::get;
use std::path::PathBuf;

/// `static/` beside the binary's sources, or in the working directory.
pub fn static_dir() -> PathBuf {
    let local = PathBuf::from("static");
    if local.is_dir() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static")
}

fn page(name: &str) -> actix_web::Result<NamedFile> {
    Ok(NamedFile::open(static_dir().join(name))?)
}

#[utoipa::path(
    operation_id = "dashboard_page",
    tag = "pages",
    responses((status = 200, description = "The dispatcher's dashboard", content_type = "text/html", body = String))
)]
#[get("/")]
pub async fn dashboard() -> actix_web::Result<NamedFile> {
    page("index.html")
}

#[utoipa::path(
    operation_id = "tracking_page",
    tag = "pages",
    params(("id" = String, Path, description = "The order (the page asks for a token)")),
    responses((status = 200, description = "The customer's tracking page", content_type = "text/html", body = String))
)]
#[get("/track/{id}")]
pub async fn track() -> actix_web::Result<NamedFile> {
    page("track.html")
}

#[utoipa::path(
    operation_id = "rider_page",
    tag = "pages",
    responses((status = 200, description = "The rider app simulator", content_type = "text/html", body = String))
)]
#[get("/rider")]
pub async fn rider() -> actix_web::Result<NamedFile> {
    page("rider.html")
}

/// The browsable API reference: renders `/api/v1/openapi.json` and the socket frames'
/// schema in the page itself (static/api.js), with nothing loaded from elsewhere.
#[utoipa::path(
    operation_id = "api_page",
    tag = "pages",
    responses((status = 200, description = "This document, browsable", content_type = "text/html", body = String))
)]
#[get("/api")]
pub async fn api() -> actix_web::Result<NamedFile> {
    page("api.html")
}

/// `/s/{token}`: the tracking page, opened from a share link without an account. A link
/// that is unknown (404) or no longer works (410) still gets the page, with that status:
/// the page asks `GET /api/v1/shared` and says why.
#[utoipa::path(
    operation_id = "shared_page",
    tag = "pages",
    params(("token" = String, Path, description = "The share link's token")),
    responses(
        (status = 200, description = "The tracking page for a share link", content_type = "text/html", body = String),
        (status = 404, description = "The same page, for a link that does not exist (it says why)", content_type = "text/html", body = String),
        (status = 410, description = "The same page, for a link revoked, expired or whose order is finished (it says why)", content_type = "text/html", body = String),
    )
)]
#[get("/s/{token}")]
pub async fn shared(
    req: actix_web::HttpRequest,
    path: actix_web::web::Path<String>,
    state: actix_web::web::Data<crate::state::AppState>,
) -> actix_web::Result<actix_web::HttpResponse> {
    use actix_web::{Responder, ResponseError};
    let status = match state.shares.resolve(&state.engine, &path).await {
        Ok(_) => actix_web::http::StatusCode::OK,
        Err(e) => e.status_code(),
    };
    // No validators: a browser revalidating a cached copy would get 304 instead of
    // the link's current status.
    let page = page("track.html")?
        .use_etag(false)
        .use_last_modified(false)
        .customize()
        .with_status(status)
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    Ok(page.respond_to(&req).map_into_boxed_body())
}
