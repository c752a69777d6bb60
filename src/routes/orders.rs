//! Orders: create and pay (idempotent), the merchant's accept/reject/ready, cancel, the
//! dispatcher's assign/unassign/fail, reads and the dispatch trace. Every call checks the
//! caller's role and that the order is theirs.

use super::merchants::merchant_id;
use super::{parse_json, read_body, require_dispatcher};
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::idempotency;
use crate::startup::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use dispatch_actors::domain::order::{Actor, Order, OrderCommand};
use dispatch_actors::domain::{GeoPoint, ItemId, OrderId, RiderId};
use serde::Deserialize;

fn order_id(raw: &str) -> Result<OrderId, ApiError> {
    OrderId::parse(raw).map_err(|_| ApiError::not_found(format!("order {raw}")))
}

/// May `who` see this order? (owner, its merchant, a rider it was offered or assigned to,
/// now or before, the dispatcher)
async fn may_read(state: &AppState, who: &Principal, order: &Order) -> Result<bool, ApiError> {
    Ok(match who {
        Principal::Dispatcher => true,
        Principal::Customer(c) => *c == order.customer_id,
        Principal::Merchant(m) => *m == order.merchant_id,
        Principal::Rider(r) => {
            order.rider_id.as_ref() == Some(r)
                || state.hub.rider_saw(r, &order.order_id)
                || state.engine.was_offered(&order.order_id, r).await?
        }
    })
}

/// Loads the order and checks the caller may read it.
async fn load(state: &AppState, who: &Principal, raw: &str) -> Result<Order, ApiError> {
    let order = state.engine.order(&order_id(raw)?).await?;
    if !may_read(state, who, &order).await? {
        return Err(ApiError::forbidden("not your order"));
    }
    Ok(order)
}

fn ok(order: &Order) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let v = serde_json::to_value(order).map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok((StatusCode::OK, v))
}

#[derive(Deserialize)]
struct LineIn {
    item_id: String,
    qty: u32,
}

#[derive(Deserialize)]
struct NewOrder {
    merchant_id: String,
    items: Vec<LineIn>,
    dropoff: GeoPoint,
}

pub async fn create(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let who = state.auth.authenticate(&req, false)?;
    let Principal::Customer(customer_id) = &who else {
        return Err(ApiError::forbidden("only customers place orders"));
    };
    // With an Idempotency-Key the order id is derived from it: a retry whose first answer
    // was lost (crash, store outage) finds that order instead of creating a second one.
    let order_id = match idempotency::header_key(&req)? {
        Some(key) => OrderId::derived_from(&format!("{}:{key}", who.scope())),
        None => OrderId::generate(),
    };
    let body = read_body(body).await?;
    let n: NewOrder = parse_json(&body)?;
    let mid = merchant_id(&n.merchant_id)?;
    if n.items.len() > 100 {
        return Err(ApiError::invalid("at most 100 lines per order"));
    }
    let items = n
        .items
        .iter()
        .map(|l| {
            ItemId::parse(&l.item_id)
                .map(|id| (id, l.qty))
                .map_err(|_| ApiError::invalid(format!("{} is not an item id", l.item_id)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let engine = state.engine.clone();
    let cid = customer_id.clone();
    idempotency::once(
        state.engine.store(),
        &state.inflight,
        &req,
        &who.scope(),
        &body,
        || async move {
            let order = engine
                .create_order_as(order_id, cid, &mid, items, n.dropoff)
                .await?;
            let v =
                serde_json::to_value(&order).map_err(|e| ApiError::unavailable(e.to_string()))?;
            Ok((StatusCode::CREATED, v))
        },
    )
    .await
}

pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let who = state.auth.authenticate(&req, false)?;
    Ok(HttpResponse::Ok().json(load(&state, &who, &path).await?))
}

#[derive(Deserialize)]
struct PayBody {
    payment_ref: String,
}

pub async fn pay(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let who = state.auth.authenticate(&req, false)?;
    let order = load(&state, &who, &path).await?;
    if !matches!(who, Principal::Customer(_)) {
        return Err(ApiError::forbidden("only the order's customer pays"));
    }
    idempotency::header_key(&req)?;
    let body = read_body(body).await?;
    let p: PayBody = parse_json(&body)?;
    if p.payment_ref.is_empty() || p.payment_ref.len() > 200 {
        return Err(ApiError::invalid("payment_ref must be 1-200 characters"));
    }
    let engine = state.engine.clone();
    idempotency::once(
        state.engine.store(),
        &state.inflight,
        &req,
        &who.scope(),
        &body,
        || async move {
            let o = engine
                .order_command(
                    &order.order_id,
                    OrderCommand::Pay {
                        payment_ref: p.payment_ref,
                    },
                )
                .await?;
            ok(&o)
        },
    )
    .await
}

/// Loads the order for its merchant.
async fn for_merchant(state: &AppState, req: &HttpRequest, raw: &str) -> Result<Order, ApiError> {
    let who = state.auth.authenticate(req, false)?;
    let order = load(state, &who, raw).await?;
    if !matches!(who, Principal::Merchant(_)) {
        return Err(ApiError::forbidden("only the order's merchant may do that"));
    }
    Ok(order)
}

#[derive(Deserialize)]
struct AcceptBody {
    prep_time_s: Option<u64>,
}

pub async fn accept(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let order = for_merchant(&state, &req, &path).await?;
    let b: AcceptBody = parse_json(&read_body(body).await?)?;
    let o = state
        .engine
        .accept_order(&order.order_id, b.prep_time_s)
        .await?;
    Ok(HttpResponse::Ok().json(o))
}

#[derive(Deserialize)]
struct ReasonBody {
    reason: String,
}

#[derive(Deserialize)]
struct OptionalReason {
    reason: Option<String>,
}

pub async fn reject(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let order = for_merchant(&state, &req, &path).await?;
    let b: ReasonBody = parse_json(&read_body(body).await?)?;
    let o = state
        .engine
        .order_command(&order.order_id, OrderCommand::Reject { reason: b.reason })
        .await?;
    Ok(HttpResponse::Ok().json(o))
}

pub async fn ready(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let order = for_merchant(&state, &req, &path).await?;
    let o = state
        .engine
        .order_command(&order.order_id, OrderCommand::MarkReady)
        .await?;
    Ok(HttpResponse::Ok().json(o))
}

pub async fn cancel(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let who = state.auth.authenticate(&req, false)?;
    let order = load(&state, &who, &path).await?;
    let by = match who {
        Principal::Customer(_) => Actor::Customer,
        Principal::Dispatcher => Actor::Dispatcher,
        _ => {
            return Err(ApiError::forbidden(
                "only the customer or a dispatcher may cancel",
            ))
        }
    };
    let b: OptionalReason = parse_json(&read_body(body).await?)?;
    let o = state
        .engine
        .order_command(
            &order.order_id,
            OrderCommand::Cancel {
                by,
                reason: b.reason,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(o))
}

#[derive(Deserialize)]
struct AssignBody {
    rider_id: String,
}

pub async fn assign(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_dispatcher(&state.auth.authenticate(&req, false)?)?;
    let id = order_id(&path)?;
    let b: AssignBody = parse_json(&read_body(body).await?)?;
    let rider = RiderId::parse(&b.rider_id).map_err(ApiError::invalid)?;
    Ok(HttpResponse::Ok().json(state.engine.assign(&id, &rider).await?))
}

pub async fn unassign(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_dispatcher(&state.auth.authenticate(&req, false)?)?;
    let id = order_id(&path)?;
    Ok(HttpResponse::Ok().json(
        state
            .engine
            .order_command(&id, OrderCommand::Unassign)
            .await?,
    ))
}

pub async fn fail(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_dispatcher(&state.auth.authenticate(&req, false)?)?;
    let id = order_id(&path)?;
    let b: ReasonBody = parse_json(&read_body(body).await?)?;
    let cmd = OrderCommand::Fail {
        by: Actor::Dispatcher,
        reason: b.reason,
    };
    Ok(HttpResponse::Ok().json(state.engine.order_command(&id, cmd).await?))
}

pub async fn trace(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_dispatcher(&state.auth.authenticate(&req, false)?)?;
    let id = order_id(&path)?;
    let decisions = state.engine.trace(&id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"order_id": id, "decisions": decisions})))
}
