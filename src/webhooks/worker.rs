//! The webhook worker: one task that owns the timers. It loads what the store kept, then
//! turns engine events into deliveries, starts each attempt when it is due (every attempt
//! on a task of its own, so a slow receiver holds up only its own queue), and records how
//! each ended. Every change goes to the store before the next step.

use super::book::{Attempt, Finished};
use super::payload;
use super::Webhooks;
use dispatch_actors::domain::WebhookEventId;
use dispatch_actors::events::Event;
use dispatch_actors::metric_names as m;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// With nothing due, look again this often anyway (cheap; guards against a missed wake).
const IDLE: Duration = Duration::from_secs(60);

pub(super) async fn run(
    hooks: Arc<Webhooks>,
    mut events: broadcast::Receiver<Event>,
    mut shutdown: watch::Receiver<bool>,
) {
    if !load(&hooks, &mut shutdown).await {
        return;
    }
    // At most one attempt per subscription is out at a time.
    let (done_tx, mut done_rx) = mpsc::channel(hooks.settings.max_subscriptions + 1);
    loop {
        let now = hooks.now_ms();
        let due = hooks.book.lock().take_due(now);
        for attempt in due {
            let (tx, sender) = (done_tx.clone(), hooks.sender.clone());
            tokio::spawn(async move {
                let result = sender.send(&attempt).await;
                let _ = tx.send((attempt, result)).await;
            });
        }
        let wait = match hooks.book.lock().next_due_ms() {
            Some(due_ms) => Duration::from_millis(due_ms.saturating_sub(now)),
            None => IDLE,
        };
        tokio::select! {
            e = events.recv() => match e {
                Ok(e) => on_event(&hooks, &e).await,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    metrics::counter!(m::EVENTS_DROPPED_TOTAL, "subscriber" => "webhooks")
                        .increment(n);
                    tracing::warn!(missed = n, "webhooks: the event bus overran the worker");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            Some((attempt, result)) = done_rx.recv() => on_result(&hooks, attempt, result).await,
            () = hooks.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Loads the store's subscriptions, pending deliveries and dead letters, retrying while
/// the store does not answer; false if shutdown came first.
async fn load(hooks: &Webhooks, shutdown: &mut watch::Receiver<bool>) -> bool {
    let mut wait = Duration::from_millis(100);
    loop {
        match hooks.store.load_webhooks().await {
            Ok(snap) => {
                let (subscriptions, pending, dead) =
                    (snap.webhooks.len(), snap.pending.len(), snap.dead.len());
                let forget = hooks.book.lock().restore(snap);
                if !forget.is_empty() {
                    if let Err(e) = hooks.store.delete_deliveries(&forget).await {
                        tracing::warn!(%e, "webhooks: orphaned deliveries not deleted");
                    }
                }
                hooks.loaded.store(true, Ordering::SeqCst);
                if subscriptions > 0 {
                    tracing::info!(subscriptions, pending, dead, "webhooks restored");
                }
                return true;
            }
            Err(e) => {
                tracing::warn!(%e, "webhooks: cannot load from the store yet");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return false,
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn on_event(hooks: &Webhooks, event: &Event) {
    let Some((kind, data)) = payload::classify(event) else {
        return;
    };
    if !hooks.book.lock().wants(kind.as_str()) {
        return;
    }
    let id = WebhookEventId::generate();
    let now = hooks.now_ms();
    let body = payload::body(&id, kind, now, data);
    let (queued, dropped) = hooks.book.lock().enqueue(kind.as_str(), &id, &body, now);
    if dropped > 0 {
        count("dropped", dropped as u64);
        tracing::warn!(
            event = %id,
            dropped,
            "webhooks: a subscription's queue is full; event dropped for it"
        );
    }
    for d in &queued {
        if let Err(e) = hooks.store.save_delivery(d).await {
            tracing::warn!(%e, delivery = %d.id, "webhooks: pending delivery not stored");
        }
    }
}

async fn on_result(hooks: &Webhooks, attempt: Attempt, result: Result<(), String>) {
    let d = &attempt.delivery;
    let finished = hooks.book.lock().finish(
        &d.webhook_id,
        &d.id,
        result,
        hooks.now_ms(),
        &hooks.policy,
        rand::random::<f64>(),
    );
    let stored = match finished {
        Finished::Delivered(d) => {
            count("delivered", 1);
            hooks.store.delete_deliveries(&[d.id]).await
        }
        Finished::Retry(d) => {
            count("retried", 1);
            tracing::debug!(delivery = %d.id, attempts = d.attempts, error = ?d.last_error, "webhook attempt failed");
            hooks.store.save_delivery(&d).await
        }
        Finished::Dead { dead, evicted } => {
            count("dead_lettered", 1);
            tracing::warn!(delivery = %dead.id, webhook = %dead.webhook_id, attempts = dead.attempts, error = ?dead.last_error, "webhook delivery gave up: dead letter");
            let saved = hooks.store.save_delivery(&dead).await;
            if let Some(old) = evicted {
                count("evicted", 1);
                if let Err(e) = hooks.store.delete_deliveries(&[old.id]).await {
                    tracing::warn!(%e, "webhooks: evicted dead letter not deleted");
                }
            }
            saved
        }
        Finished::Gone => Ok(()),
    };
    if let Err(e) = stored {
        tracing::warn!(%e, delivery = %d.id, "webhooks: delivery state not stored");
    }
}

fn count(outcome: &'static str, n: u64) {
    metrics::counter!(m::WEBHOOK_DELIVERIES_TOTAL, "outcome" => outcome).increment(n);
}

/// The `outcome` labels of `dispatch_webhook_deliveries_total`, shown at 0 from the start.
pub const OUTCOMES: [&str; 5] = [
    "delivered",
    "retried",
    "dead_lettered",
    "dropped",
    "evicted",
];
