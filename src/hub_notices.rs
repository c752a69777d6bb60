//! Notices of an order for its tracking pages and merchant apps (rider positions,
//! "rider arriving", reminders) and for dashboards (an offer ran out): from this node's own orders (the event bus, `Hub::route`)
//! and from other nodes' (docs/cluster.md, "The whole city on every socket": their nodes
//! send them, `Engine::order_notices_elsewhere`). Both go through [`Hub::order_notice`],
//! so a socket gets the same frames wherever the order's actor lives. The order's own node
//! never hears its notices back (a node sends only to its peers), so none comes twice.

use super::{push_keyed, Hub};
use crate::ws::frames::{encode, MerchantFrame, TrackFrame};
use dispatch_actors::actors::remote::wire::OrderNotice;
use dispatch_actors::metric_names;
use dispatch_actors::outbox::PushOutcome;
use dispatch_actors::Engine;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

impl Hub {
    /// Reads what the engine hears of other nodes' orders' notices until `shutdown` turns
    /// true.
    pub(super) fn follow_order_notices_elsewhere(
        self: &Arc<Self>,
        engine: &Engine,
        stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let rx = engine.order_notices_elsewhere();
        let hub = self.clone();
        // Lost notes: a page gets the next position; a lost reminder repeats with the
        // order's next one.
        super::follow::follow(rx, stop, "order_notices_elsewhere", move |notices| {
            for n in notices.iter() {
                hub.order_notice(n);
            }
        })
    }

    /// One notice of an order, wherever its actor lives: its frame to the order's
    /// tracking pages or its merchant's apps connected here.
    pub fn order_notice(&self, notice: &OrderNotice) {
        match notice {
            OrderNotice::RiderMovedForOrder {
                order_id,
                location,
                ts_ms,
                eta_s,
                ..
            } => {
                let frame = encode(&TrackFrame::RiderLocation {
                    lat: location.lat(),
                    lon: location.lon(),
                    ts_ms: *ts_ms,
                    eta_s: *eta_s,
                });
                let mut trackers = self.trackers.lock();
                if let Some(list) = trackers.get_mut(order_id) {
                    // Locations coalesce: a slow page gets the latest, not a backlog.
                    list.retain(|o| match o.push_latest(1, frame.clone()) {
                        PushOutcome::Queued => true,
                        PushOutcome::Coalesced => {
                            metrics::counter!(metric_names::WS_FRAMES_DROPPED_TOTAL, "socket" => "track", "why" => "coalesced")
                                .increment(1);
                            true
                        }
                        PushOutcome::Overflowed | PushOutcome::Closed => false,
                    });
                    if list.is_empty() {
                        trackers.remove(order_id);
                    }
                }
            }
            OrderNotice::RiderArriving {
                order_id,
                merchant_id,
                eta_s,
            } => {
                let frame = encode(&MerchantFrame::RiderArriving {
                    order_id,
                    eta_s: *eta_s,
                });
                push_keyed(&self.merchants, merchant_id, &frame, "merchant");
            }
            OrderNotice::MerchantReminded {
                merchant_id,
                order_id,
                message,
            } => {
                let frame = encode(&MerchantFrame::Reminder { order_id, message });
                push_keyed(&self.merchants, merchant_id, &frame, "merchant");
            }
            // Only heard from other nodes: this node's own expiries the hub counts from
            // `Event::OfferClosed`.
            OrderNotice::OfferExpired { offer_id, .. } => {
                self.count_expired_offer_elsewhere(offer_id)
            }
            // A kind a newer node sends: nothing here knows what to do with it.
            OrderNotice::Unknown => {}
        }
    }
}
