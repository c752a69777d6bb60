//! The browser pages: dashboard, tracking page, rider simulator (files under static/).

use actix_files::NamedFile;
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

pub async fn dashboard() -> actix_web::Result<NamedFile> {
    page("index.html")
}

pub async fn track() -> actix_web::Result<NamedFile> {
    page("track.html")
}

pub async fn rider() -> actix_web::Result<NamedFile> {
    page("rider.html")
}

/// `/s/{token}`: the tracking page, opened from a share link without an account. A link
/// that is unknown (404) or no longer works (410) still gets the page, with that status:
/// the page asks `GET /api/v1/shared` and says why.
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
