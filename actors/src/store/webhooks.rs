//! What the store keeps for webhooks (docs/protocol.md, "Webhooks"): subscriptions, the
//! deliveries still on their way (with their attempt count and next attempt time) and the
//! dead letters. The server's webhook worker holds the working copy in memory and writes
//! every change through; a durable store hands it all back after a restart, so a delivery
//! that was pending when the process died is sent again (at least once).

use crate::domain::{DeliveryId, WebhookEventId, WebhookId};
use serde::{Deserialize, Serialize};

/// A subscription: where to call, for which events, and the secret that signs each call
/// (kept as given: the server needs it to sign).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRecord {
    pub id: WebhookId,
    pub url: String,
    /// Event names (`order.status_changed`, …).
    pub events: Vec<String>,
    pub secret: String,
    pub created_ms: u64,
}

/// One event for one subscription: pending (`dead_ms` None) or a dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event_id: WebhookEventId,
    pub event_type: String,
    /// The request body, exactly as signed and sent.
    pub body: String,
    /// Order of creation across restarts: a subscription's deliveries go out in this order.
    pub seq: u64,
    pub created_ms: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (engine clock, ms).
    pub next_attempt_ms: u64,
    /// Why the last attempt failed (`HTTP 500`, `timed out`, …).
    pub last_error: Option<String>,
    /// Set when the delivery gave up: it is a dead letter since then.
    pub dead_ms: Option<u64>,
}

impl DeliveryRecord {
    pub fn is_dead(&self) -> bool {
        self.dead_ms.is_some()
    }
}

/// Everything stored for webhooks, as read back at start-up.
#[derive(Debug, Clone, Default)]
pub struct WebhookSnapshot {
    pub webhooks: Vec<WebhookRecord>,
    pub pending: Vec<DeliveryRecord>,
    pub dead: Vec<DeliveryRecord>,
}
