//! `GET /ws/dispatch?token=…`: the dispatcher's dashboard. A snapshot of every rider,
//! live order and open escalation (plus merchants and live counters), then batched
//! `updates` at most once per `dashboard.update_interval_ms`.

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
    if state.auth.authenticate(&req, true)? != Principal::Dispatcher {
        return Err(ApiError::forbidden("dispatcher only"));
    }
    let (response, session, stream) = upgrade(&req, body)?;
    let outbox = Outbox::new(state.settings.dashboard.queue_frames);
    // Registered first; the snapshot goes ahead of updates queued while it was built.
    state.hub.add_dashboard(outbox.clone());
    let snapshot = snapshot(&state).await?;
    outbox.push_front(snapshot);
    serve_push_only(&state, session, stream, outbox, "dispatch");
    Ok(response)
}

pub async fn snapshot(state: &AppState) -> Result<String, ApiError> {
    let e = &state.engine;
    let riders = e.riders().await;
    let orders: Vec<_> = e
        .live_orders()
        .await
        .into_iter()
        .filter(|o| !o.status.is_final())
        .collect();
    let escalations = e.escalations(true).await?;
    let merchants = e.merchants().await;
    Ok(
        json!({"type": "snapshot", "riders": riders, "orders": orders,
        "escalations": escalations, "merchants": merchants, "stats": state.hub.stats()})
        .to_string(),
    )
}
