//! Merchants and their menus.

use crate::auth::Principal;
use crate::errors::{ApiError, ErrorBody};
use crate::extract::{Caller, Dispatcher, Json};
use crate::state::AppState;
use actix_web::{get, patch, post, put, web, HttpResponse};
use dispatch_actors::domain::merchant::{Item, Merchant};
use dispatch_actors::domain::{GeoPoint, ItemId, MerchantId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn merchant_id(raw: &str) -> Result<MerchantId, ApiError> {
    MerchantId::parse(raw).map_err(|_| ApiError::not_found(format!("merchant {raw}")))
}

/// The merchant named in the path, when the caller is that merchant.
fn own_merchant(who: Caller, raw: &str) -> Result<MerchantId, ApiError> {
    let Caller(who) = who;
    let id = merchant_id(raw)?;
    match who {
        Principal::Merchant(m) if m == id => Ok(id),
        _ => Err(ApiError::forbidden("only this merchant may do that")),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewMerchant {
    pub name: String,
    pub location: GeoPoint,
    /// Default 600, allowed 0–7200.
    pub prep_time_s: Option<u64>,
}

/// A new merchant and the token its app signs in with.
#[derive(Serialize, ToSchema)]
pub struct MerchantCreated {
    pub merchant_id: MerchantId,
    pub token: String,
    pub merchant: Merchant,
}

#[utoipa::path(
    operation_id = "create_merchant",
    tag = "merchants",
    request_body = NewMerchant,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created, `open: true`", body = MerchantCreated),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: dispatcher only", body = ErrorBody),
    )
)]
#[post("/merchants")]
pub async fn create(
    _: Dispatcher,
    Json { value: m, .. }: Json<NewMerchant>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let merchant = state
        .engine
        .create_merchant(m.name, m.location, m.prep_time_s)
        .await?;
    let token = state
        .auth
        .issue_durable(Principal::Merchant(merchant.merchant_id.clone()))
        .await?;
    Ok(HttpResponse::Created().json(MerchantCreated {
        merchant_id: merchant.merchant_id.clone(),
        token,
        merchant,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct OpenBody {
    pub open: bool,
}

#[utoipa::path(
    operation_id = "set_merchant_open",
    tag = "merchants",
    params(("id" = MerchantId, Path, description = "The merchant (the caller itself)")),
    request_body = OpenBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The merchant", body = Merchant),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only that merchant", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[put("/merchants/{id}/open")]
pub async fn set_open(
    who: Caller,
    path: web::Path<String>,
    body: Result<Json<OpenBody>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = own_merchant(who, &path)?;
    let b = body?.value;
    Ok(HttpResponse::Ok().json(state.engine.set_merchant_open(&id, b.open).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct NewItem {
    pub name: String,
    pub price_cents: i64,
}

#[utoipa::path(
    operation_id = "add_item",
    tag = "merchants",
    params(("id" = MerchantId, Path, description = "The merchant (the caller itself)")),
    request_body = NewItem,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The item, available", body = Item),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only that merchant", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[post("/merchants/{id}/items")]
pub async fn add_item(
    who: Caller,
    path: web::Path<String>,
    body: Result<Json<NewItem>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = own_merchant(who, &path)?;
    let b = body?.value;
    Ok(HttpResponse::Created().json(state.engine.add_item(&id, b.name, b.price_cents).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct ItemPatch {
    pub available: Option<bool>,
    pub price_cents: Option<i64>,
}

#[utoipa::path(
    operation_id = "update_item",
    tag = "merchants",
    params(
        ("id" = MerchantId, Path, description = "The merchant (the caller itself)"),
        ("item_id" = ItemId, Path, description = "One of its items"),
    ),
    request_body = ItemPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The item", body = Item),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: only that merchant", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[patch("/merchants/{id}/items/{item_id}")]
pub async fn update_item(
    who: Caller,
    path: web::Path<(String, String)>,
    body: Result<Json<ItemPatch>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (mid, iid) = path.into_inner();
    let id = own_merchant(who, &mid)?;
    let item_id = ItemId::parse(&iid).map_err(|_| ApiError::not_found(format!("item {iid}")))?;
    let b = body?.value;
    Ok(HttpResponse::Ok().json(
        state
            .engine
            .update_item(&id, item_id, b.available, b.price_cents)
            .await?,
    ))
}

#[utoipa::path(
    operation_id = "list_items",
    tag = "merchants",
    params(("id" = MerchantId, Path, description = "Any merchant")),
    responses(
        (status = 200, description = "Its menu; no token needed", body = Vec<Item>),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[get("/merchants/{id}/items")]
pub async fn list_items(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = merchant_id(&path)?;
    Ok(HttpResponse::Ok().json(state.engine.items(&id).await?))
}
