//! `GET /ws/merchant?token=…`: a merchant's live orders, reminders, riders arriving. On a
//! node of several, the orders of a zone another node holds are in the welcome and their
//! changes follow (docs/cluster.md); reminders and riders arriving reach only the sockets on
//! the order's node.

use super::frames::{encode, MerchantFrame};
use super::serve_push_only;
use crate::auth::Principal;
use crate::elsewhere::with_elsewhere;
use crate::errors::{ApiError, ErrorBody};
use crate::extract::SocketRequest;
use actix_web::{get, HttpResponse};
use dispatch_actors::domain::order::Order;

#[utoipa::path(
    operation_id = "merchant_socket",
    tag = "sockets",
    params(("token" = Option<String>, Query, description = "The token, if not in Authorization")),
    security(("bearer" = [])),
    responses(
        (status = 101, description = "Upgraded. Text frames, one JSON object each, with `type`: server → client `MerchantFrame`; client messages are read only as signs of life (`/api/v1/socket-frames.schema.json`)"),
        (status = 400, description = "`invalid_input`: not a WebSocket upgrade", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or invalid token", body = ErrorBody),
        (status = 403, description = "`forbidden`: merchant tokens only, or a browser origin not allowed", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over a socket cap, with Retry-After", body = ErrorBody),
    ),
    extensions(("x-socket-frames" = json!({"schema": "/api/v1/socket-frames.schema.json", "server_to_client": "#/$defs/MerchantFrame"}))),
)]
#[get("/ws/merchant")]
pub async fn connect(socket: SocketRequest) -> Result<HttpResponse, ApiError> {
    let state = socket.state.clone();
    let Principal::Merchant(merchant_id) = socket.who.clone() else {
        return Err(ApiError::forbidden("merchant tokens only"));
    };
    let opened = socket.open(state.settings.server.ws_queue_frames)?;
    let outbox = opened.outbox.clone();
    // Registered first; the welcome goes ahead of changes queued while it was built.
    state.hub.add_merchant(merchant_id.clone(), outbox.clone());
    let mine = |o: &Order| o.merchant_id == merchant_id && !o.status.is_final();
    let here: Vec<_> = state
        .engine
        .live_orders()
        .await
        .into_iter()
        .filter(|o| mine(o))
        .collect();
    // On a node of several, the merchant's zone may be another node's: its orders are
    // those the city feed heard of.
    let elsewhere = state.hub.orders_elsewhere().into_iter().filter(|o| mine(o));
    let orders = with_elsewhere(here, elsewhere);
    outbox.push_front(encode(&MerchantFrame::Welcome {
        merchant_id: &merchant_id,
        orders: &orders,
    }));
    let hub = state.hub.clone();
    let response = serve_push_only(&state, opened, "merchant", move |o| {
        hub.remove_merchant(&merchant_id, o)
    });
    Ok(response)
}
