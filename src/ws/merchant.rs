//! `GET /ws/merchant?token=…`: a merchant's live orders, reminders, riders arriving.

use super::{check_origin, serve_push_only, upgrade};
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::startup::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use dispatch_actors::outbox::Outbox;
use serde_json::json;

pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_origin(&state, &req)?;
    let merchant_id = match state.auth.authenticate(&req, true)? {
        Principal::Merchant(m) => m,
        _ => return Err(ApiError::forbidden("merchant tokens only")),
    };
    let (response, session, stream) = upgrade(&req, body)?;
    let outbox = Outbox::new(state.settings.server.ws_queue_frames);
    // Registered first; the welcome goes ahead of changes queued while it was built.
    state.hub.add_merchant(merchant_id.clone(), outbox.clone());
    let orders: Vec<_> = state
        .engine
        .live_orders()
        .await
        .into_iter()
        .filter(|o| o.merchant_id == merchant_id && !o.status.is_final())
        .collect();
    outbox.push_front(
        json!({"type": "welcome", "merchant_id": merchant_id, "orders": orders}).to_string(),
    );
    serve_push_only(&state, session, stream, outbox, "merchant");
    Ok(response)
}
