//! REST under `/api/v1`, operations endpoints and pages. Callers and bodies come through
//! the extractors in src/extract.rs; ids are parsed at the edge.

pub mod customers;
pub mod devices;
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

use actix_web::web;

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
            .route("/riders/{id}/devices", web::post().to(devices::register))
            .route(
                "/riders/{id}/devices/{device_id}",
                web::delete().to(devices::revoke),
            )
            .route("/owntracks", web::post().to(owntracks::report))
            .route("/riders/{id}/tokens", web::post().to(tokens::issue))
            .route("/riders/{id}/tokens", web::delete().to(tokens::revoke))
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
            .route(
                "/orders/{id}/share-links",
                web::post().to(share_links::create),
            )
            .route("/orders/{id}/share-links", web::get().to(share_links::list))
            .route(
                "/orders/{id}/share-links/{link_id}",
                web::delete().to(share_links::revoke),
            )
            .route("/shared", web::get().to(share_links::read))
            .route("/escalations", web::get().to(escalations::list))
            .route(
                "/escalations/{id}/resolve",
                web::post().to(escalations::resolve),
            )
            .route("/webhooks", web::post().to(webhooks::create))
            .route("/webhooks", web::get().to(webhooks::list))
            .route(
                "/webhooks/dead-letters",
                web::get().to(webhooks::dead_letters),
            )
            .route(
                "/webhooks/dead-letters/{id}/replay",
                web::post().to(webhooks::replay),
            )
            .route("/webhooks/{id}", web::delete().to(webhooks::delete))
            .default_service(web::to(ops::not_found)),
    )
    .route("/ws/rider", web::get().to(crate::ws::rider::connect))
    .route("/ws/merchant", web::get().to(crate::ws::merchant::connect))
    .route(
        "/ws/orders/{id}/track",
        web::get().to(crate::ws::track::connect),
    )
    .route("/ws/dispatch", web::get().to(crate::ws::dispatch::connect))
    .route("/ws/share", web::get().to(crate::ws::share::connect))
    .route("/healthz", web::get().to(ops::healthz))
    .route("/readyz", web::get().to(ops::readyz))
    .route("/metrics", web::get().to(ops::metrics))
    .route("/", web::get().to(pages::dashboard))
    .route("/track/{id}", web::get().to(pages::track))
    .route("/rider", web::get().to(pages::rider))
    .route("/s/{token}", web::get().to(pages::shared))
    .service(actix_files::Files::new("/static", pages::static_dir()))
    .default_service(web::to(ops::not_found));
}

/// The ops listener's routes (`server.ops_bind`): probes and the scrape, nothing else.
pub fn configure_ops(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(ops::healthz))
        .route("/readyz", web::get().to(ops::readyz))
        .route("/metrics", web::get().to(ops::metrics))
        .default_service(web::to(ops::not_found));
}
