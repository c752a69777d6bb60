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
