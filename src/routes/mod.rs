//! REST under `/api/v1`, operations endpoints, sockets, pages and the API's own
//! description. Callers and bodies come through the extractors in src/extract.rs; ids are
//! parsed at the edge.

pub mod customers;
pub mod devices;
pub mod docs;
pub mod escalations;
pub mod merchants;
pub mod ops;
pub mod orders;
pub mod osmand;
pub mod owntracks;
pub mod pages;
pub mod riders;
pub mod share_links;
pub mod tokens;
pub mod webhooks;

use crate::ws;
use actix_web::web;
use utoipa_actix_web::{scope, service_config::ServiceConfig};

pub fn configure(cfg: &mut web::ServiceConfig) {
    register(&mut ServiceConfig::new(cfg));
}

/// Every route of the main listener. Each `service` is a handler whose method and path are
/// its attribute (`#[post("/customers")]`) and whose documentation is its
/// `#[utoipa::path]`: this one list is the router and the OpenAPI document's paths
/// (src/api_doc), so neither can have a route the other lacks. Only the static files go
/// around it (`map`): a directory of assets, not an API. Keep it that way:
/// tests/api/openapi.rs refuses any other registration here.
pub fn register(cfg: &mut ServiceConfig) {
    cfg.service(
        scope::scope("/api/v1")
            .service(customers::register)
            .service(customers::login)
            .service(merchants::create)
            .service(merchants::set_open)
            .service(merchants::add_item)
            .service(merchants::list_items)
            .service(merchants::update_item)
            .service(riders::create)
            .service(riders::list)
            .service(riders::nearby)
            .service(devices::register)
            .service(devices::revoke)
            .service(owntracks::report)
            .service(tokens::issue)
            .service(tokens::revoke)
            .service(orders::create)
            .service(orders::get)
            .service(orders::pay)
            .service(orders::accept)
            .service(orders::reject)
            .service(orders::ready)
            .service(orders::cancel)
            .service(orders::assign)
            .service(orders::unassign)
            .service(orders::fail)
            .service(orders::trace)
            .service(share_links::create)
            .service(share_links::list)
            .service(share_links::revoke)
            .service(share_links::read)
            .service(escalations::list)
            .service(escalations::resolve)
            .service(webhooks::create)
            .service(webhooks::list)
            .service(webhooks::dead_letters)
            .service(webhooks::replay)
            .service(webhooks::delete)
            .service(docs::openapi)
            .service(docs::socket_frames)
            .default_service(web::to(ops::not_found)),
    )
    .service(ws::rider::connect)
    .service(ws::merchant::connect)
    .service(ws::track::connect)
    .service(ws::dispatch::connect)
    .service(ws::share::connect)
    .service(ops::healthz)
    .service(ops::readyz)
    .service(ops::metrics)
    .service(pages::dashboard)
    .service(pages::track)
    .service(pages::rider)
    .service(pages::api)
    .service(pages::shared)
    .map(|c| c.service(actix_files::Files::new("/static", pages::static_dir())))
    .default_service(web::to(ops::not_found));
}

/// The ops listener's routes (`server.ops_bind`): probes and the scrape, nothing else.
pub fn configure_ops(cfg: &mut web::ServiceConfig) {
    cfg.service(ops::healthz)
        .service(ops::readyz)
        .service(ops::metrics)
        .default_service(web::to(ops::not_found));
}
