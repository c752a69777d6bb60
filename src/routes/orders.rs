//! Orders: create and pay (idempotent), the merchant's accept/reject/ready, cancel, the
//! dispatcher's assign/unassign/fail, reads and the dispatch trace. Every call checks the
//! caller's role and that the order is theirs.

use super::merchants::merchant_id;
use crate::auth::Principal;
use crate::errors::{ApiError, ErrorBody};
use crate::extract::{Caller, Dispatcher, Json};
use crate::idempotency::{self, IdemKey};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use dispatch_actors::domain::offers::TraceEntry;
use dispatch_actors::domain::order::{Actor, Order, OrderCommand};
use dispatch_actors::domain::{GeoPoint, ItemId, MerchantId, OrderId, RiderId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

/// An order as the JSON an idempotent call stores and replays.
fn answer(status: StatusCode, order: &Order) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let v = serde_json::to_value(order)
        .map_err(|e| ApiError::internal(format!("order not serializable: {e}")))?;
    Ok((status, v))
}

#[derive(Deserialize, ToSchema)]
pub struct LineIn {
    #[schema(value_type = ItemId)]
    item_id: String,
    qty: u32,
}

#[derive(Deserialize, ToSchema)]
pub struct NewOrder {
    #[schema(value_type = MerchantId)]
    merchant_id: String,
    /// At most 100 lines.
    items: Vec<LineIn>,
    pub dropoff: GeoPoint,
}

impl NewOrder {
    /// The merchant and the lines as domain ids: an unknown-looking merchant is 404, more
    /// than 100 lines or a bad item id 400. Quantities are checked against the menu.
    pub fn parsed(&self) -> Result<(MerchantId, Vec<(ItemId, u32)>), ApiError> {
        let mid = merchant_id(&self.merchant_id)?;
        if self.items.len() > 100 {
            return Err(ApiError::invalid("at most 100 lines per order"));
        }
        let items = self
            .items
            .iter()
            .map(|l| {
                ItemId::parse(&l.item_id)
                    .map(|id| (id, l.qty))
                    .map_err(|_| ApiError::invalid(format!("{} is not an item id", l.item_id)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((mid, items))
    }
}

#[utoipa::path(
    operation_id = "create_order",
    tag = "orders",
    params(("Idempotency-Key" = Option<String>, Header, description = "1–128 characters: a retry with the same key and body replays the first answer")),
    request_body = NewOrder,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Placed, `pending_payment`", body = Order),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (or another conflict)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot take the change now; nothing changed", body = ErrorBody),
    )
)]
#[post("/orders")]
pub async fn create(
    req: HttpRequest,
    Caller(who): Caller,
    body: Result<Json<NewOrder>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Principal::Customer(customer_id) = &who else {
        return Err(ApiError::forbidden("only customers place orders"));
    };
    // With an Idempotency-Key the order id is derived from it: a retry whose first answer
    // was lost (crash, store outage) finds that order instead of creating a second one.
    let order_id = match idempotency::header_key(&req)? {
        Some(key) => OrderId::derived_from(&format!("{}:{key}", who.scope())),
        None => OrderId::generate(),
    };
    let Json { value: n, raw } = body?;
    let (mid, items) = n.parsed()?;
    let engine = state.engine.clone();
    let cid = customer_id.clone();
    let key = IdemKey::of(&req, &who.scope(), &raw)?;
    state
        .idempotency
        .once(state.engine.store(), key, || async move {
            let order = engine
                .create_order_as(order_id, cid, &mid, items, n.dropoff)
                .await?;
            answer(StatusCode::CREATED, &order)
        })
        .await
}

#[utoipa::path(
    operation_id = "get_order",
    tag = "orders",
    params(("id" = OrderId, Path, description = "The order")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The order (its customer, merchant, rider, or the dispatcher)", body = Order),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[get("/orders/{id}")]
pub async fn get(
    Caller(who): Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(load(&state, &who, &path).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct PayBody {
    /// 1–200 bytes.
    payment_ref: String,
}

impl PayBody {
    /// The payment reference, 1–200 bytes.
    pub fn payment_ref(self) -> Result<String, ApiError> {
        if self.payment_ref.is_empty() || self.payment_ref.len() > 200 {
            return Err(ApiError::invalid("payment_ref must be 1-200 characters"));
        }
        Ok(self.payment_ref)
    }
}

#[utoipa::path(
    operation_id = "pay_order",
    tag = "orders",
    params(("id" = OrderId, Path, description = "The order"), ("Idempotency-Key" = Option<String>, Header, description = "1–128 characters: a retry with the same key and body replays the first answer")),
    request_body = PayBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`paid`", body = Order),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (or another conflict)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot take the change now; nothing changed", body = ErrorBody),
    )
)]
#[post("/orders/{id}/pay")]
pub async fn pay(
    req: HttpRequest,
    Caller(who): Caller,
    path: web::Path<String>,
    body: Result<Json<PayBody>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let order = load(&state, &who, &path).await?;
    if !matches!(who, Principal::Customer(_)) {
        return Err(ApiError::forbidden("only the order's customer pays"));
    }
    idempotency::header_key(&req)?;
    let Json { value: p, raw } = body?;
    let payment_ref = p.payment_ref()?;
    let engine = state.engine.clone();
    let key = IdemKey::of(&req, &who.scope(), &raw)?;
    state
        .idempotency
        .once(state.engine.store(), key, || async move {
            let cmd = OrderCommand::Pay { payment_ref };
            let o = engine.order_command(&order.order_id, cmd).await?;
            answer(StatusCode::OK, &o)
        })
        .await
}

/// Loads the order for its merchant.
async fn for_merchant(state: &AppState, who: &Principal, raw: &str) -> Result<Order, ApiError> {
    let order = load(state, who, raw).await?;
    if !matches!(who, Principal::Merchant(_)) {
        return Err(ApiError::forbidden("only the order's merchant may do that"));
    }
    Ok(order)
}

#[derive(Deserialize, ToSchema)]
pub struct AcceptBody {
    /// Default: the merchant's `prep_time_s`; allowed 0–7200.
    pub prep_time_s: Option<u64>,
}

#[utoipa::path(
    operation_id = "accept_order",
    tag = "orders",
    params(("id" = OrderId, Path, description = "The order")),
    request_body = AcceptBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`accepted` (its merchant)", body = Order),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (or another conflict)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot take the change now; nothing changed", body = ErrorBody),
    )
)]
#[post("/orders/{id}/accept")]
pub async fn accept(
    Caller(who): Caller,
    path: web::Path<String>,
    body: Result<Json<AcceptBody>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let order = for_merchant(&state, &who, &path).await?;
    let b = body?.value;
    let o = state
        .engine
        .accept_order(&order.order_id, b.prep_time_s)
        .await?;
    Ok(HttpResponse::Ok().json(o))
}

#[derive(Deserialize, ToSchema)]
pub struct ReasonBody {
    pub reason: String,
}

#[derive(Deserialize, ToSchema)]
pub struct OptionalReason {
    pub reason: Option<String>,
}

#[utoipa::path(
    operation_id = "reject_order",
    tag = "orders",
    params(("id" = OrderId, Path, description = "The order")),
    request_body = ReasonBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`cancelled` (its merchant, while `paid`)", body = Order),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (or another conflict)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot take the change now; nothing changed", body = ErrorBody),
    )
)]
#[post("/orders/{id}/reject")]
pub async fn reject(
    Caller(who): Caller,
    path: web::Path<String>,
    body: Result<Json<ReasonBody>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let order = for_merchant(&state, &who, &path).await?;
    let b = body?.value;
    let o = state
        .engine
        .order_command(&order.order_id, OrderCommand::Reject { reason: b.reason })
        .await?;
    Ok(HttpResponse::Ok().json(o))
}

#[utoipa::path(
    operation_id = "mark_order_ready",
    tag = "orders",
    params(("id" = OrderId, Path, description = "The order")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`ready: true` (its merchant, while `accepted` or `assigned`)", body = Order),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (or another conflict)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot take the change now; nothing changed", body = ErrorBody),
    )
)]
#[post("/orders/{id}/ready")]
pub async fn ready(
    Caller(who): Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let order = for_merchant(&state, &who, &path).await?;
    let o = state
        .engine
        .order_command(&order.order_id, OrderCommand::MarkReady)
        .await?;
    Ok(HttpResponse::Ok().json(o))
}

#[utoipa::path(
    operation_id = "cancel_order",
    tag = "orders",
    params(("id" = OrderId, Path, description = "The order")),
    request_body = OptionalReason,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`cancelled` (its customer before `accepted`, the dispatcher before `picked_up`)", body = Order),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (or another conflict)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot take the change now; nothing changed", body = ErrorBody),
    )
)]
#[post("/orders/{id}/cancel")]
pub async fn cancel(
    Caller(who): Caller,
    path: web::Path<String>,
    body: Result<Json<OptionalReason>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
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
    let b = body?.value;
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

#[derive(Deserialize, ToSchema)]
pub struct AssignBody {
    #[schema(value_type = RiderId)]
    rider_id: String,
}

impl AssignBody {
    pub fn rider(&self) -> Result<RiderId, ApiError> {
        RiderId::parse(&self.rider_id).map_err(ApiError::invalid)
    }
}

#[utoipa::path(
    operation_id = "assign_order",
    tag = "orders",
    params(("id" = OrderId, Path, description = "The order")),
    request_body = AssignBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Assigned to the rider (dispatcher; the rider must be connected and not offline or stale, else 409 `rider_unavailable`)", body = Order),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (or another conflict)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot take the change now; nothing changed", body = ErrorBody),
    )
)]
#[post("/orders/{id}/assign")]
pub async fn assign(
    _: Dispatcher,
    path: web::Path<String>,
    body: Result<Json<AssignBody>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let b = body?.value;
    let rider = b.rider()?;
    Ok(HttpResponse::Ok().json(state.engine.assign(&id, &rider).await?))
}

#[utoipa::path(
    operation_id = "unassign_order",
    tag = "orders",
    params(("id" = OrderId, Path, description = "The order")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Back to `accepted`, dispatched again (dispatcher)", body = Order),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (or another conflict)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot take the change now; nothing changed", body = ErrorBody),
    )
)]
#[post("/orders/{id}/unassign")]
pub async fn unassign(
    _: Dispatcher,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    Ok(HttpResponse::Ok().json(
        state
            .engine
            .order_command(&id, OrderCommand::Unassign)
            .await?,
    ))
}

#[utoipa::path(
    operation_id = "fail_order",
    tag = "orders",
    params(("id" = OrderId, Path, description = "The order")),
    request_body = ReasonBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`failed` (dispatcher, while `picked_up`)", body = Order),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (or another conflict)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot take the change now; nothing changed", body = ErrorBody),
    )
)]
#[post("/orders/{id}/fail")]
pub async fn fail(
    _: Dispatcher,
    path: web::Path<String>,
    body: Result<Json<ReasonBody>, ApiError>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let b = body?.value;
    let cmd = OrderCommand::Fail {
        by: Actor::Dispatcher,
        reason: b.reason,
    };
    Ok(HttpResponse::Ok().json(state.engine.order_command(&id, cmd).await?))
}

#[utoipa::path(
    operation_id = "order_trace",
    tag = "orders",
    params(("id" = OrderId, Path, description = "The order")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The dispatch decisions for this order (dispatcher)", body = OrderTrace),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
#[get("/orders/{id}/trace")]
pub async fn trace(
    _: Dispatcher,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = order_id(&path)?;
    let decisions = state.engine.trace(&id).await?;
    Ok(HttpResponse::Ok().json(OrderTrace {
        order_id: id,
        decisions,
    }))
}

/// An order's dispatch decisions: searches and planning rounds, their candidates, scores
/// and why riders were skipped.
#[derive(Serialize, ToSchema)]
pub struct OrderTrace {
    pub order_id: OrderId,
    pub decisions: Vec<TraceEntry>,
}
