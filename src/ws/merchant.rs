//! `GET /ws/merchant?token=…`: a merchant's live orders, reminders, riders arriving.

use super::frames::{encode, MerchantFrame};
use super::serve_push_only;
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::extract::SocketRequest;
use actix_web::HttpResponse;

pub async fn connect(socket: SocketRequest) -> Result<HttpResponse, ApiError> {
    let state = socket.state.clone();
    let Principal::Merchant(merchant_id) = socket.who.clone() else {
        return Err(ApiError::forbidden("merchant tokens only"));
    };
    let opened = socket.open(state.settings.server.ws_queue_frames)?;
    let outbox = opened.outbox.clone();
    // Registered first; the welcome goes ahead of changes queued while it was built.
    state.hub.add_merchant(merchant_id.clone(), outbox.clone());
    let orders: Vec<_> = state
        .engine
        .live_orders()
        .await
        .into_iter()
        .filter(|o| o.merchant_id == merchant_id && !o.status.is_final())
        .collect();
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
