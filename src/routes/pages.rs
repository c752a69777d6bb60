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
