//! Share links (docs/protocol.md, "Share links"): the order's customer creates, lists and
//! revokes them; anyone holding one reads the order through `GET /shared?token=…` (the
//! token in the query, where the access log redacts it) or the `/ws/share` socket.

use crate::auth::{now_ms, Principal};
use crate::errors::{ApiError, ErrorBody};
use crate::extract::{Caller, Json};
use crate::share::SharedOrder;
use crate::state::AppState;
use actix_web::{delete, get, post, web, HttpResponse};
use dispatch_actors::domain::order::Order;
use dispatch_actors::domain::share::{ShareLink, SharePrivacy};
use dispatch_actors::domain::{OrderId, ShareLinkId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A link as its customer sees it (the only answers that carry the token).
#[derive(Serialize, ToSchema)]
#[schema(as = ShareLink)]
pub struct LinkView<'a> {
    #[schema(value_type = ShareLinkId)]
    id: &'a ShareLinkId,
    #[schema(value_type = OrderId)]
    order_id: &'a OrderId,
    /// The link's secret: 32 lowercase hex characters.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    token: &'a str,
    /// This server's page for the link: `/s/<token>`.
    url: String,
    privacy: SharePrivacy,
    created_ms: u64,
    expires_at_ms: u64,
    revoked_ms: Option<u64>,
}

impl<'a> LinkView<'a> {
    fn of(l: &'a ShareLink) -> Self {
        Self {
            id: &l.link_id,
            order_id: &l.order_id,
            token: l.token.expose(),
            url: format!("/s/{}", l.token.expose()),
            privacy: l.privacy,
            created_ms: l.created_ms,
            expires_at_ms: l.expires_ms,
            revoked_ms: l.revoked_ms,
        }
    }
}

/// The order, for its customer (or, to list and revoke, the dispatcher). Anyone else gets
/// the same 403 the order itself answers.
async fn owned(
    state: &AppState,
    who: &Principal,
    raw: &str,
    creating: bool,
) -> Result<Order, ApiError> {
    let id = OrderId::parse(raw).map_err(|_| ApiError::not_found(format!("order {raw}")))?;
    let order = state.engine.order(&id).await?;
    match who {
        Principal::Customer(c) if *c == order.customer_id => Ok(order),
        Principal::Dispatcher if !creating => Ok(order),
        _ => Err(ApiError::forbidden("not your order")),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewLink {
    /// How long the link works, within `share.min_ttl_s..=share.max_ttl_s`.
    ttl_s: u64,
    privacy: SharePrivacy,
}

#[utoipa::path(
    operation_id = "create_share_link",
    tag = "share links",
    params(("id" = OrderId, Path, description = "The order")),
    request_body = NewLink,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the only answers that carry the token are this one and the list", body = LinkView),
        (status = 400, description = "`invalid_input`: `ttl_s` out of range, a bad body", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the order's customer only", body = ErrorBody),
        (status = 404, description = "`not_found`: no such order", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: the order has been final for longer than `share.after_final_s`; `limit_reached`: as many live links as `share.max_links_per_order`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot take the change now; nothing changed", body = ErrorBody),
    )
)]
#[post("/orders/{id}/share-links")]
pub async fn create(
    Caller(who): Caller,
    path: web::Path<String>,
    body: Result<Json<NewLink>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let order = owned(&state, &who, &path, true).await?;
    let n = body?.value;
    let shares = &state.shares;
    let s = &shares.settings;
    if !(s.min_ttl_s..=s.max_ttl_s).contains(&n.ttl_s) {
        return Err(ApiError::invalid(format!(
            "ttl_s must be {}..={} seconds",
            s.min_ttl_s, s.max_ttl_s
        )));
    }
    let now = now_ms();
    let link = ShareLink::new(
        order.order_id.clone(),
        order.customer_id.clone(),
        n.privacy,
        now,
        n.ttl_s * 1000,
    );
    let final_ms = crate::share::final_ms(&order);
    if link.check(now, final_ms, s.after_final_ms()).is_err() {
        return Err(ApiError::Engine(
            dispatch_actors::EngineError::InvalidTransition(
                "the order is finished; it can no longer be shared".into(),
            ),
        ));
    }
    let live = shares
        .store()
        .share_links_of(&order.order_id)
        .await?
        .iter()
        .filter(|l| l.check(now, None, 0).is_ok())
        .count();
    if live >= s.max_links_per_order {
        return Err(ApiError::LimitReached(format!(
            "at most {} live share links per order; revoke one first",
            s.max_links_per_order
        )));
    }
    shares.store().save_share_link(&link).await?;
    shares.created();
    Ok(HttpResponse::Created().json(LinkView::of(&link)))
}

#[utoipa::path(
    operation_id = "list_share_links",
    tag = "share links",
    params(("id" = OrderId, Path, description = "The order")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The order's links, oldest first, revoked ones with `revoked_ms`", body = Vec<LinkView>),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the order's customer or the dispatcher only", body = ErrorBody),
        (status = 404, description = "`not_found`: no such order", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store does not answer", body = ErrorBody),
    )
)]
#[get("/orders/{id}/share-links")]
pub async fn list(
    Caller(who): Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let order = owned(&state, &who, &path, false).await?;
    let links = state.shares.store().share_links_of(&order.order_id).await?;
    let views: Vec<LinkView> = links.iter().map(LinkView::of).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// Revokes a link; revoking one already revoked changes nothing and answers the same.
#[utoipa::path(
    operation_id = "revoke_share_link",
    tag = "share links",
    params(
        ("id" = OrderId, Path, description = "The order"),
        ("link_id" = ShareLinkId, Path, description = "The link"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked (or already was); its sockets close"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the order's customer or the dispatcher only", body = ErrorBody),
        (status = 404, description = "`not_found`: no such order, or no such link of it", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot take the change now; nothing changed", body = ErrorBody),
    )
)]
#[delete("/orders/{id}/share-links/{link_id}")]
pub async fn revoke(
    Caller(who): Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (raw_order, raw_link) = path.into_inner();
    let order = owned(&state, &who, &raw_order, false).await?;
    let shares = &state.shares;
    let mut link = shares
        .store()
        .share_links_of(&order.order_id)
        .await?
        .into_iter()
        .find(|l| l.link_id.as_str() == raw_link)
        .ok_or_else(|| ApiError::not_found(format!("share link {raw_link}")))?;
    if link.revoked_ms.is_none() {
        link.revoked_ms = Some(now_ms());
        shares.store().save_share_link(&link).await?;
    }
    shares.revoked(&link.link_id);
    Ok(HttpResponse::NoContent().finish())
}

/// `?token=<share token>`: in the query, where the access log redacts it.
#[derive(Deserialize)]
pub struct TokenQuery {
    pub token: String,
}

/// What a link's holder reads: the order as shared, and until when the link works.
#[derive(Serialize, ToSchema)]
pub struct Shared<'a> {
    privacy: SharePrivacy,
    expires_at_ms: u64,
    /// When the link stops working: its expiry, or `share.after_final_s` after the order
    /// became final, whichever comes first.
    closes_at_ms: u64,
    order: SharedOrder<'a>,
}

#[utoipa::path(
    operation_id = "read_shared_order",
    tag = "share links",
    security(("share_token" = [])),
    responses(
        (status = 200, description = "The order as shared (no customer, no rider; `eta_s` only with `status_and_position`)", body = Shared),
        (status = 400, description = "`invalid_input`: no `token`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such share link", body = ErrorBody),
        (status = 410, description = "`gone`: the link expired or was revoked, or its order finished over `share.after_final_s` ago", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store does not answer", body = ErrorBody),
    )
)]
#[get("/shared")]
pub async fn read(
    query: web::Query<TokenQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let r = state.shares.resolve(&state.engine, &query.token).await?;
    Ok(HttpResponse::Ok().json(Shared {
        privacy: r.link.privacy,
        expires_at_ms: r.link.expires_ms,
        closes_at_ms: r.closes_at_ms,
        order: SharedOrder::of(&r.order, r.link.privacy),
    }))
}
