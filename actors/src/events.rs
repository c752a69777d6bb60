//! Past-tense engine events, fanned out on a bounded broadcast bus. Subscribers (dashboard,
//! tracking and merchant hubs, the store's event log) each get every event; one that lags
//! more than the bus capacity loses the oldest ones, which it counts.

use crate::domain::escalation::Escalation;
use crate::domain::merchant::Merchant;
use crate::domain::offers::OfferCloseReason;
use crate::domain::order::{Order, OrderStatus};
use crate::domain::rider::RiderView;
use crate::domain::{GeoPoint, MerchantId, OfferId, OrderId, RiderId};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Any change of an order (status, rider, ready…); `previous_status` tells a status
    /// change from another change.
    OrderChanged {
        order: Arc<Order>,
        previous_status: Option<OrderStatus>,
    },
    RiderChanged {
        rider: Arc<RiderView>,
    },
    /// A rider holding an order moved: for the order's tracking page and merchant.
    RiderMovedForOrder {
        order_id: OrderId,
        customer_id: crate::domain::CustomerId,
        merchant_id: MerchantId,
        rider_id: RiderId,
        location: GeoPoint,
        ts_ms: u64,
        eta_s: u64,
    },
    RiderArriving {
        order_id: OrderId,
        merchant_id: MerchantId,
        eta_s: u64,
    },
    OfferSent {
        offer_id: OfferId,
        order_id: OrderId,
        rider_id: RiderId,
        expires_at_ms: u64,
    },
    OfferClosed {
        offer_id: OfferId,
        order_id: OrderId,
        rider_id: RiderId,
        reason: OfferCloseReason,
    },
    MerchantReminded {
        merchant_id: MerchantId,
        order_id: OrderId,
        message: String,
    },
    EscalationChanged {
        escalation: Arc<Escalation>,
    },
    MerchantChanged {
        merchant: Arc<Merchant>,
    },
}

#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Self { tx }
    }

    /// Publishes an event; never waits. With nobody subscribed, it goes nowhere.
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
