//! The machine-readable contract (docs/protocol.md, "Machine-readable contract"): the
//! OpenAPI 3.1 document of the main listener and the socket frames' JSON Schema.
//!
//! Nothing here lists a route or a field. The document's paths are collected by
//! utoipa-actix-web from the same `service(...)` calls that build the router
//! (`routes::register`), each handler bringing its `#[utoipa::path]`; the schemas are
//! derived (`ToSchema`) from the types the handlers and sockets serialize. Both documents
//! are built once, on first request, and served as they are.

pub mod socket_frames;

use crate::errors::ErrorBody;
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

/// Title, version (Cargo's), licence, server and auth schemes: what no handler says.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "dispatchd",
        description = "Real-time dispatch engine for food delivery. The contract in prose is \
            docs/protocol.md; this document is generated from the handlers. WebSocket \
            endpoints carry `x-socket-frames`: JSON pointers into \
            /api/v1/socket-frames.schema.json for the frames each way. The OsmAnd / Traccar \
            listener (`ingest.osmand_bind`, its own port) and the static assets under \
            /static are not in it. While a restart reads its state back from Redis, every \
            /api/ and /ws/ call answers 503 `unavailable` with Retry-After; operations do \
            not repeat that."
    ),
    servers((url = "/", description = "This server")),
    components(schemas(ErrorBody)),
    modifiers(&AuthSchemes),
    tags(
        (name = "customers", description = "Registration and login"),
        (name = "merchants", description = "Merchants and their menus"),
        (name = "riders", description = "Riders and their tokens"),
        (name = "orders", description = "Orders and their state machine"),
        (name = "escalations", description = "What needs the dispatcher"),
        (name = "share links", description = "Following an order without an account"),
        (name = "webhooks", description = "Signed deliveries of order changes and escalations"),
        (name = "tracking apps", description = "OwnTracks, and tracking-app devices"),
        (name = "sockets", description = "WebSocket upgrades (frames: x-socket-frames)"),
        (name = "operations", description = "Probes and metrics"),
        (name = "pages", description = "Browser pages"),
        (name = "contract", description = "This document and the socket frames' schema"),
    )
)]
struct Contract;

struct AuthSchemes;

impl Modify for AuthSchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        // `Authorization: Bearer <token>`; socket upgrades may pass `?token=` instead.
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // OwnTracks in HTTP mode: the rider id and one of its devices as Basic auth.
        components.add_security_scheme(
            "owntracks",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        // A share link's token (`?token=`), for someone without an account: the link is
        // the credential, and the access log redacts it there.
        components.add_security_scheme(
            "share_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "A share link's token (32 lowercase hex characters)",
            ))),
        );
    }
}

/// The document, from the router's own registration (a throwaway `App` runs it; nothing
/// is served from that one).
pub fn document() -> Document {
    let (_, mut doc) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(Contract::openapi())
        .configure(crate::routes::register)
        .split_for_parts();
    // The frames are not request or response bodies, so no path brings them: added here so
    // the document alone describes the sockets too.
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.extend(socket_frames::schemas());
    doc
}

pub fn openapi_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        serde_json::to_string(&document()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the OpenAPI document is not serializable");
            String::new()
        })
    })
}

pub fn socket_frames_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| socket_frames::document().to_string())
}
