//! `GET /ws/orders/{id}/track?token=…`: a customer follows their order. Only the order's
//! customer or a dispatcher: a missing or invalid token is 401, any other token 403, both
//! at the upgrade, before anything about the order is sent.

use super::{check_origin, serve_push_only, upgrade};
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::startup::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use dispatch_actors::domain::OrderId;
use dispatch_actors::outbox::Outbox;
use serde_json::json;

pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_origin(&state, &req)?;
    let who = state.auth.authenticate(&req, true)?;
    let order_id = OrderId::parse(&path).map_err(|_| ApiError::not_found("no such order"))?;
    let order = state.engine.order(&order_id).await?;
    match &who {
        Principal::Dispatcher => {}
        Principal::Customer(c) if *c == order.customer_id => {}
        _ => {
            return Err(ApiError::forbidden(
                "only the order's customer may track it",
            ))
        }
    }
    let (response, session, stream) = upgrade(&req, body)?;
    let outbox = Outbox::new(state.settings.server.ws_queue_frames);
    // Registered before the snapshot is read, and the snapshot goes ahead of anything
    // queued meanwhile: no status change falls between the two.
    state.hub.add_tracker(order_id.clone(), outbox.clone());
    let order = state.engine.order(&order_id).await?;
    outbox.push_front(json!({"type": "snapshot", "order": order}).to_string());
    serve_push_only(&state, session, stream, outbox, "track");
    Ok(response)
}
