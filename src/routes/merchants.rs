//! Merchants and their menus.

use crate::auth::Principal;
use crate::errors::ApiError;
use crate::extract::{Caller, Dispatcher, Json};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use dispatch_actors::domain::{GeoPoint, ItemId, MerchantId};
use serde::Deserialize;
use serde_json::json;

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

#[derive(Deserialize)]
pub struct NewMerchant {
    pub name: String,
    pub location: GeoPoint,
    pub prep_time_s: Option<u64>,
}

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
    Ok(HttpResponse::Created()
        .json(json!({"merchant_id": merchant.merchant_id, "token": token, "merchant": merchant})))
}

#[derive(Deserialize)]
pub struct OpenBody {
    pub open: bool,
}

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

#[derive(Deserialize)]
pub struct NewItem {
    pub name: String,
    pub price_cents: i64,
}

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

#[derive(Deserialize)]
pub struct ItemPatch {
    pub available: Option<bool>,
    pub price_cents: Option<i64>,
}

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

pub async fn list_items(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = merchant_id(&path)?;
    Ok(HttpResponse::Ok().json(state.engine.items(&id).await?))
}
