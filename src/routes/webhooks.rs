//! Webhook subscriptions and dead letters, for the dispatcher (docs/protocol.md,
//! "Webhooks"). Inputs are parsed into the webhook model first: a bad one is 400 and
//! nothing is stored.

use crate::errors::ApiError;
use crate::extract::{Dispatcher, Json};
use crate::state::AppState;
use crate::webhooks::model::{parse_events, Secret, WebhookUrl};
use actix_web::{web, HttpResponse};
use dispatch_actors::domain::{DeliveryId, WebhookId};
use dispatch_actors::store::{DeliveryRecord, WebhookRecord};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeBody {
    pub url: String,
    pub events: Vec<String>,
    pub secret: Option<String>,
}

fn subscription(hook: &WebhookRecord, pending: usize) -> Value {
    json!({
        "webhook_id": hook.id,
        "url": hook.url,
        "events": hook.events,
        "created_ms": hook.created_ms,
        "pending": pending,
    })
}

fn delivery(d: &DeliveryRecord) -> Value {
    json!({
        "delivery_id": d.id,
        "webhook_id": d.webhook_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "attempts": d.attempts,
        "created_ms": d.created_ms,
        "failed_ms": d.dead_ms,
        "next_attempt_ms": if d.is_dead() { None } else { Some(d.next_attempt_ms) },
        "last_error": d.last_error,
        "payload": serde_json::from_str::<Value>(&d.body).unwrap_or(Value::Null),
    })
}

/// `POST /webhooks` → 201 the subscription with its `secret` (shown only here).
pub async fn create(
    _: Dispatcher,
    body: Json<SubscribeBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let b = body.value;
    let allow_private = state.webhooks.settings().allow_private;
    let url = WebhookUrl::parse(&b.url, allow_private).map_err(ApiError::invalid)?;
    let events = parse_events(&b.events).map_err(ApiError::invalid)?;
    let secret = match b.secret.as_deref() {
        Some(s) => Secret::parse(s).map_err(ApiError::invalid)?,
        None => Secret::generate(),
    };
    let hook = state.webhooks.subscribe(url, events, secret).await?;
    let mut view = subscription(&hook, 0);
    view["secret"] = json!(hook.secret);
    Ok(HttpResponse::Created().json(view))
}

/// `GET /webhooks` → 200 `[subscription]`, oldest first, without secrets.
pub async fn list(_: Dispatcher, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let all = state.webhooks.list()?;
    let views: Vec<Value> = all.iter().map(|(h, n)| subscription(h, *n)).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// `DELETE /webhooks/{id}` → 204; unknown (or not a webhook id) → 404.
pub async fn delete(
    _: Dispatcher,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = WebhookId::parse(&path).map_err(|_| ApiError::not_found(format!("webhook {path}")))?;
    state.webhooks.delete(&id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /webhooks/dead-letters` → 200 `[dead letter]`, newest first.
pub async fn dead_letters(
    _: Dispatcher,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let all = state.webhooks.dead_letters()?;
    Ok(HttpResponse::Ok().json(all.iter().map(delivery).collect::<Vec<_>>()))
}

/// `POST /webhooks/dead-letters/{id}/replay` → 202 the delivery, queued again.
pub async fn replay(
    _: Dispatcher,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id =
        DeliveryId::parse(&path).map_err(|_| ApiError::not_found(format!("dead letter {path}")))?;
    let again = state.webhooks.replay(&id).await?;
    Ok(HttpResponse::Accepted().json(delivery(&again)))
}
