//! `GET /ws/orders/{id}/track?token=…`: a customer follows their order. Only the order's
//! customer or a dispatcher: a missing or invalid token is 401, any other token 403, both
//! at the upgrade, before anything about the order is sent.

use super::frames::{encode, TrackFrame};
use super::serve_push_only;
use crate::auth::Principal;
use crate::errors::{ApiError, ErrorBody};
use crate::extract::SocketRequest;
use actix_web::{get, web, HttpResponse};
use dispatch_actors::domain::OrderId;

#[utoipa::path(
    operation_id = "tracking_socket",
    tag = "sockets",
    params(("token" = Option<String>, Query, description = "The token, if not in Authorization"), ("id" = OrderId, Path, description = "The order")),
    security(("bearer" = [])),
    responses(
        (status = 101, description = "Upgraded. Text frames, one JSON object each, with `type`: server → client `TrackFrame`; client messages are read only as signs of life (`/api/v1/socket-frames.schema.json`)"),
        (status = 400, description = "`invalid_input`: not a WebSocket upgrade", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or invalid token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the order's customer or the dispatcher only, or a browser origin not allowed", body = ErrorBody),
        (status = 404, description = "`not_found`: no such order", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over a socket cap, with Retry-After", body = ErrorBody),
    ),
    extensions(("x-socket-frames" = json!({"schema": "/api/v1/socket-frames.schema.json", "server_to_client": "#/$defs/TrackFrame"}))),
)]
#[get("/ws/orders/{id}/track")]
pub async fn connect(
    socket: SocketRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let state = socket.state.clone();
    let order_id = OrderId::parse(&path).map_err(|_| ApiError::not_found("no such order"))?;
    let order = state.engine.order(&order_id).await?;
    match &socket.who {
        Principal::Dispatcher => {}
        Principal::Customer(c) if *c == order.customer_id => {}
        _ => {
            return Err(ApiError::forbidden(
                "only the order's customer may track it",
            ))
        }
    }
    let opened = socket.open(state.settings.server.ws_queue_frames)?;
    let outbox = opened.outbox.clone();
    // Registered before the snapshot is read, and the snapshot goes ahead of anything
    // queued meanwhile: no status change falls between the two.
    state.hub.add_tracker(order_id.clone(), outbox.clone());
    let order = match state.engine.order(&order_id).await {
        Ok(o) => o,
        Err(e) => {
            // No socket will serve it: the hub must not keep it.
            state.hub.remove_tracker(&order_id, &outbox);
            return Err(e.into());
        }
    };
    outbox.push_front(encode(&TrackFrame::Snapshot { order: &order }));
    let hub = state.hub.clone();
    let response = serve_push_only(&state, opened, "track", move |o| {
        hub.remove_tracker(&order_id, o)
    });
    Ok(response)
}
