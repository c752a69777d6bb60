//! The API's own description, for programs: the OpenAPI document and the socket frames'
//! JSON Schema (src/api_doc), public like the menus. The page that renders them is
//! `GET /api` (src/routes/pages.rs).

use crate::api_doc;
use actix_web::{get, HttpResponse};

#[utoipa::path(
    operation_id = "openapi_document",
    tag = "contract",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = serde_json::Value))
)]
#[get("/openapi.json")]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(api_doc::openapi_json())
}

#[utoipa::path(
    operation_id = "socket_frames_schema",
    tag = "contract",
    responses((status = 200, description = "Every socket frame, both directions, as JSON Schema (2020-12); `x-sockets` maps each socket to its frames", content_type = "application/schema+json", body = serde_json::Value))
)]
#[get("/socket-frames.schema.json")]
pub async fn socket_frames() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/schema+json")
        .body(api_doc::socket_frames_json())
}
