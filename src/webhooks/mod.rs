//! Webhooks (docs/protocol.md, "Webhooks"): outside systems subscribe to order status
//! changes and escalations; each event is POSTed to them signed, retried with backoff, and
//! after the last attempt kept as a dead letter a dispatcher can replay.
//!
//! - `model`: event names, URL (SSRF checks), secret, parsed at the edge;
//! - `payload`: which engine events become webhook events, and their body;
//! - `book`: subscriptions, their queues and the dead letters (plain data, unit-tested);
//! - `retry`: the backoff schedule; `signature`: the `Dispatch-Signature` header;
//! - `client`: one HTTP attempt; `worker`: the task that owns the timers and the calls.
//!
//! The book is the working copy; every change is written through the store, which on
//! Redis hands it back after a restart (pending deliveries resume: at least once).

mod book;
mod client;
mod config;
pub mod model;
mod payload;
mod retry;
pub mod signature;
mod worker;

pub use book::ReplayError;
pub use client::{ATTEMPT_HEADER, DELIVERY_ID_HEADER, EVENT_ID_HEADER, EVENT_TYPE_HEADER};
pub use config::WebhookSettings;
pub use worker::OUTCOMES as DELIVERY_OUTCOMES;

use crate::errors::ApiError;
use book::Book;
use dispatch_actors::domain::{DeliveryId, WebhookId};
use dispatch_actors::events::Event;
use dispatch_actors::store::{DeliveryRecord, Store, WebhookRecord};
use dispatch_actors::Clock;
use model::{EventKind, Secret, WebhookUrl};
use parking_lot::Mutex;
use retry::RetryPolicy;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{broadcast, watch, Notify};

/// The webhook service: what the REST handlers call, shared with its worker.
pub struct Webhooks {
    book: Mutex<Book>,
    /// The store's subscriptions and deliveries are in the book (after a restart on
    /// Redis this takes until Redis answers).
    loaded: AtomicBool,
    /// Subscription changes and replays one at a time, each stored before it is
    /// acknowledged (so the subscription cap holds, and a failed write changes nothing).
    changes: tokio::sync::Mutex<()>,
    store: Arc<dyn Store>,
    clock: Clock,
    settings: WebhookSettings,
    policy: RetryPolicy,
    sender: client::Sender,
    /// Something is due now (a replay): the worker looks again.
    wake: Notify,
}

impl Webhooks {
    /// Starts the worker on `events` (subscribe to the engine's bus before anything is
    /// published that should reach a webhook). Must be called inside a tokio runtime.
    pub fn start(
        settings: WebhookSettings,
        store: Arc<dyn Store>,
        clock: Clock,
        events: broadcast::Receiver<Event>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Webhooks>, String> {
        let hooks = Arc::new(Webhooks {
            book: Mutex::new(Book::new(settings.queue_max, settings.dead_letters_max)),
            loaded: AtomicBool::new(false),
            changes: tokio::sync::Mutex::new(()),
            store,
            clock,
            policy: RetryPolicy {
                max_attempts: settings.max_attempts,
                base_ms: settings.backoff_base_ms,
                max_ms: settings.backoff_max_ms,
            },
            sender: client::Sender::new(settings.timeout(), settings.allow_private)?,
            settings,
            wake: Notify::new(),
        });
        tokio::spawn(worker::run(hooks.clone(), events, shutdown));
        Ok(hooks)
    }

    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Refuses while the stored webhooks are not loaded yet, or the store cannot take a
    /// change now.
    fn ready(&self, changing: bool) -> Result<(), ApiError> {
        if !self.loaded.load(Ordering::SeqCst) {
            return Err(ApiError::unavailable(
                "webhooks are still being restored; retry shortly",
            ));
        }
        if changing && !self.store.writable() {
            return Err(ApiError::unavailable(
                "the store is unavailable; nothing was changed",
            ));
        }
        Ok(())
    }

    /// A new subscription, stored before it is returned.
    pub async fn subscribe(
        &self,
        url: WebhookUrl,
        events: Vec<EventKind>,
        secret: Secret,
    ) -> Result<WebhookRecord, ApiError> {
        self.ready(true)?;
        let _one_at_a_time = self.changes.lock().await;
        let max = self.settings.max_subscriptions;
        if self.book.lock().count() >= max {
            return Err(ApiError::LimitReached(format!(
                "at most {max} webhook subscriptions (webhooks.max_subscriptions); delete one first"
            )));
        }
        let hook = WebhookRecord {
            id: WebhookId::generate(),
            url: url.as_str().to_string(),
            events: events.iter().map(|k| k.as_str().to_string()).collect(),
            secret: secret.expose().to_string(),
            created_ms: self.now_ms(),
        };
        self.store.save_webhook(&hook).await?;
        self.book.lock().add(hook.clone());
        tracing::info!(webhook = %hook.id, url = %hook.url, "webhook subscribed");
        Ok(hook)
    }

    /// Subscriptions, oldest first, with their pending deliveries.
    pub fn list(&self) -> Result<Vec<(WebhookRecord, usize)>, ApiError> {
        self.ready(false)?;
        Ok(self.book.lock().list())
    }

    /// Deletes a subscription with its pending deliveries and dead letters.
    pub async fn delete(&self, id: &WebhookId) -> Result<(), ApiError> {
        self.ready(true)?;
        let _one_at_a_time = self.changes.lock().await;
        let not_found = || ApiError::not_found(format!("webhook {id}"));
        let ids = self.book.lock().deliveries_of(id).ok_or_else(not_found)?;
        // Stored first, so a failed write leaves the subscription as it was. A delivery
        // queued meanwhile is left in the store without its subscription, and forgotten
        // at the next start.
        self.store.delete_webhook(id, &ids).await?;
        self.book.lock().remove(id);
        tracing::info!(webhook = %id, "webhook deleted");
        Ok(())
    }

    /// Dead letters, newest first.
    pub fn dead_letters(&self) -> Result<Vec<DeliveryRecord>, ApiError> {
        self.ready(false)?;
        Ok(self.book.lock().dead_letters())
    }

    /// Queues a dead letter again (at the back of its subscription's queue, attempts
    /// counted afresh); stored before it is acknowledged.
    pub async fn replay(&self, id: &DeliveryId) -> Result<DeliveryRecord, ApiError> {
        self.ready(true)?;
        let _one_at_a_time = self.changes.lock().await;
        let not_found = || ApiError::not_found(format!("dead letter {id}"));
        let again = self
            .book
            .lock()
            .replay_candidate(id, self.now_ms())
            .map_err(|e| match e {
                ReplayError::NotFound => not_found(),
                ReplayError::QueueFull => ApiError::unavailable(
                    "the subscription's queue is full (webhooks.queue_max); retry later",
                ),
            })?;
        self.store.save_delivery(&again).await?;
        if !self.book.lock().commit_replay(again.clone()) {
            // Pushed out of the dead letters (the cap) while it was being stored.
            let _ = self.store.delete_deliveries(&[again.id]).await;
            return Err(not_found());
        }
        self.wake.notify_one();
        Ok(again)
    }
}
