//! Webhook subscriptions and dead letters, for the dispatcher (docs/protocol.md,
//! "Webhooks"). Inputs are parsed into the webhook model first: a bad one is 400 and
//! nothing is stored.

use crate::errors::{ApiError, ErrorBody};
use crate::extract::{Dispatcher, Json};
use crate::state::AppState;
use crate::webhooks::model::{parse_events, EventKind, Secret, WebhookUrl};
use actix_web::{delete, get, post, web, HttpResponse};
use dispatch_actors::domain::{DeliveryId, WebhookEventId, WebhookId};
use dispatch_actors::store::{DeliveryRecord, WebhookRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeBody {
    /// Absolute http(s), at most 2048 bytes; a private or loopback host is refused unless
    /// `webhooks.allow_private`.
    pub url: String,
    /// One or more; repeats are ignored.
    #[schema(value_type = Vec<WebhookEvent>, min_items = 1)]
    pub events: Vec<String>,
    /// 16–256 characters without spaces; generated when absent.
    pub secret: Option<String>,
}

/// An event name one can subscribe to. Only a schema: its values are [`EventKind::ALL`].
pub struct WebhookEvent;

impl utoipa::PartialSchema for WebhookEvent {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(EventKind::ALL.map(EventKind::as_str)))
            .into()
    }
}

impl ToSchema for WebhookEvent {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("WebhookEvent")
    }
}

/// A subscription as the dispatcher sees it.
#[derive(Serialize, ToSchema)]
pub struct Subscription<'a> {
    #[schema(value_type = WebhookId)]
    webhook_id: &'a WebhookId,
    url: &'a str,
    #[schema(value_type = Vec<WebhookEvent>)]
    events: &'a [String],
    created_ms: u64,
    /// Deliveries not yet made (dead letters not counted).
    pending: usize,
    /// The signing secret: in the 201 of its creation only.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
}

fn subscription(hook: &WebhookRecord, pending: usize) -> Subscription<'_> {
    Subscription {
        webhook_id: &hook.id,
        url: &hook.url,
        events: &hook.events,
        created_ms: hook.created_ms,
        pending,
        secret: None,
    }
}

/// One event for one subscription: a dead letter, or (after a replay) queued again.
#[derive(Serialize, ToSchema)]
pub struct Delivery<'a> {
    #[schema(value_type = DeliveryId)]
    delivery_id: &'a DeliveryId,
    #[schema(value_type = WebhookId)]
    webhook_id: &'a WebhookId,
    /// The event as receivers see it: the same on every attempt and replay.
    #[schema(value_type = WebhookEventId)]
    event_id: &'a WebhookEventId,
    #[schema(value_type = WebhookEvent)]
    event_type: &'a str,
    attempts: u32,
    created_ms: u64,
    /// When it became a dead letter (null once replayed).
    failed_ms: Option<u64>,
    /// When the next attempt is due (null for a dead letter).
    next_attempt_ms: Option<u64>,
    last_error: Option<&'a str>,
    /// The request body as signed and sent: `{id, type, created_ms, data}`.
    #[schema(value_type = Object)]
    payload: Value,
}

fn delivery(d: &DeliveryRecord) -> Delivery<'_> {
    Delivery {
        delivery_id: &d.id,
        webhook_id: &d.webhook_id,
        event_id: &d.event_id,
        event_type: &d.event_type,
        attempts: d.attempts,
        created_ms: d.created_ms,
        failed_ms: d.dead_ms,
        next_attempt_ms: if d.is_dead() {
            None
        } else {
            Some(d.next_attempt_ms)
        },
        last_error: d.last_error.as_deref(),
        payload: serde_json::from_str::<Value>(&d.body).unwrap_or(Value::Null),
    }
}

/// `POST /webhooks` → 201 the subscription with its `secret` (shown only here).
#[utoipa::path(
    operation_id = "create_webhook",
    tag = "webhooks",
    request_body = SubscribeBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Subscribed; the answer carries the signing secret, once", body = Subscription),
        (status = 400, description = "`invalid_input`: a bad url (or a non-public host), unknown events, a bad secret, unknown fields; nothing stored", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: dispatcher only", body = ErrorBody),
        (status = 409, description = "`limit_reached`: as many subscriptions as `webhooks.max_subscriptions`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot take the change now; nothing changed", body = ErrorBody),
    )
)]
#[post("/webhooks")]
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
    let view = Subscription {
        secret: Some(&hook.secret),
        ..subscription(&hook, 0)
    };
    Ok(HttpResponse::Created().json(view))
}

/// `GET /webhooks` → 200 `[subscription]`, oldest first, without secrets.
#[utoipa::path(
    operation_id = "list_webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Subscriptions, oldest first, without their secrets", body = Vec<Subscription>),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: dispatcher only", body = ErrorBody),
        (status = 503, description = "`unavailable`: the subscriptions are not loaded yet", body = ErrorBody),
    )
)]
#[get("/webhooks")]
pub async fn list(_: Dispatcher, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let all = state.webhooks.list()?;
    let views: Vec<Subscription> = all.iter().map(|(h, n)| subscription(h, *n)).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// `DELETE /webhooks/{id}` → 204; unknown (or not a webhook id) → 404.
#[utoipa::path(
    operation_id = "delete_webhook",
    tag = "webhooks",
    params(("id" = WebhookId, Path, description = "The subscription")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted, with its pending deliveries and dead letters"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: dispatcher only", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store cannot take the change now; nothing changed", body = ErrorBody),
    )
)]
#[delete("/webhooks/{id}")]
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
#[utoipa::path(
    operation_id = "list_webhook_dead_letters",
    tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deliveries that gave up, newest first", body = Vec<Delivery>),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: dispatcher only", body = ErrorBody),
        (status = 503, description = "`unavailable`: the dead letters are not loaded yet", body = ErrorBody),
    )
)]
#[get("/webhooks/dead-letters")]
pub async fn dead_letters(
    _: Dispatcher,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let all = state.webhooks.dead_letters()?;
    Ok(HttpResponse::Ok().json(all.iter().map(delivery).collect::<Vec<_>>()))
}

/// `POST /webhooks/dead-letters/{id}/replay` → 202 the delivery, queued again.
#[utoipa::path(
    operation_id = "replay_webhook_dead_letter",
    tag = "webhooks",
    params(("id" = DeliveryId, Path, description = "The dead letter")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued again (attempts start over)", body = Delivery),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: dispatcher only", body = ErrorBody),
        (status = 404, description = "`not_found`: no such dead letter (unknown, or already replayed)", body = ErrorBody),
        (status = 503, description = "`unavailable`: its subscription's queue is full, or the store cannot take the change; nothing changed", body = ErrorBody),
    )
)]
#[post("/webhooks/dead-letters/{id}/replay")]
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
