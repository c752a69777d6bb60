//! What others hear of an order's changes, and when: never before the change is stored.
//! A change queues its notices (events for the merchant, tracking and dashboard sockets;
//! messages to riders); `persist` hands the record to the store and sends the notices
//! only once the store acknowledged it. If the store is away, the notices wait for the
//! next write that succeeds (the store keeps the change and flushes it when it is back).

use super::{store_error, OrderActor};
use crate::actors::remote::wire::RiderMsg;
use crate::domain::offers::{OfferCloseReason, OpenOffer};
use crate::domain::order::Order;
use crate::domain::RiderId;
use crate::error::EngineError;
use crate::events::Event;
use crate::metric_names;
use crate::protocol::{
    CloseOffer, OrderAssigned, OrderCancelled, OrderChanged, OrderUnassigned, Relinquish,
    RemindRider,
};
use crate::store::StoreError;
use actix::prelude::*;
use std::time::Duration;

/// A notice held until its change is stored.
pub(super) enum Notice {
    Event(Event),
    /// Boxed: an order travels inside some of them.
    Rider(RiderId, Box<ToRider>),
}

/// Messages from an order to a rider (`crate::protocol`).
pub(super) enum ToRider {
    Close(CloseOffer),
    Assigned(OrderAssigned),
    Unassigned(OrderUnassigned),
    Cancelled(OrderCancelled),
    Changed(OrderChanged),
    Remind(RemindRider),
}

/// After a failed write, held notices try again with the next write this long after.
const RETRY_NOTICES: Duration = Duration::from_secs(1);

impl OrderActor {
    /// Queues an event for the bus (merchant, tracking, dashboard): sent once stored.
    pub(super) fn announce(&mut self, event: Event) {
        self.outgoing.push(Notice::Event(event));
    }

    /// Queues a message to a rider: sent once stored.
    pub(super) fn tell_rider(&mut self, rider: &RiderId, msg: ToRider) {
        self.outgoing
            .push(Notice::Rider(rider.clone(), Box::new(msg)));
    }

    fn deliver(&self, notices: Vec<Notice>) {
        for n in notices {
            match n {
                Notice::Event(e) => {
                    // Sockets on other nodes hear it too (several nodes).
                    self.shared.order_notices.put(&e);
                    self.shared.bus.publish(e)
                }
                Notice::Rider(id, msg) => {
                    let Some(rider) = self.shared.rider_ref(&id) else {
                        continue;
                    };
                    rider.tell(match *msg {
                        ToRider::Close(m) => RiderMsg::Close {
                            offer_id: m.offer_id,
                            reason: m.reason,
                        },
                        ToRider::Assigned(m) => RiderMsg::Assigned { order: m.0 },
                        ToRider::Unassigned(m) => RiderMsg::Unassigned {
                            order_id: m.order_id,
                            reason: m.reason,
                        },
                        ToRider::Cancelled(m) => RiderMsg::Cancelled { order_id: m.0 },
                        ToRider::Changed(m) => RiderMsg::Changed { order: m.0 },
                        ToRider::Remind(m) => RiderMsg::Remind {
                            order_id: m.order_id,
                            message: m.message,
                        },
                    });
                }
            }
        }
    }

    /// Writes the order (with offers and timers) to the store, then sends what the changes
    /// since the last write announce; resolves with the order once stored. A
    /// compare-and-set conflict means another engine moved the order, and a fenced write
    /// that another node owns the order's zone now: either way this actor lets go of it,
    /// and its notices are dropped.
    pub(super) fn persist(&mut self) -> ResponseActFuture<Self, Result<Order, EngineError>> {
        self.seq += 1;
        let rec = self.record();
        let notices = std::mem::take(&mut self.outgoing);
        // The order's own changes are stored with the record, in one atomic write.
        let changes: Vec<Event> = notices
            .iter()
            .filter_map(|n| match n {
                Notice::Event(e @ Event::OrderChanged { .. }) => Some(e.clone()),
                _ => None,
            })
            .collect();
        let store = self.shared.store.clone();
        Box::pin(
            async move {
                store
                    .save_order_with_events(&rec, &changes)
                    .await
                    .map(|_| rec.order)
            }
            .into_actor(self)
            .map(move |res, act, ctx| match res {
                Ok(order) => {
                    act.deliver(notices);
                    Ok(order)
                }
                Err(e) => {
                    // Another node moved the order, or owns its zone now: this actor stops.
                    if matches!(e, StoreError::Conflict(_) | StoreError::Fenced(_)) {
                        ctx.notify(Relinquish);
                    } else if !notices.is_empty() {
                        let later = std::mem::replace(&mut act.outgoing, notices);
                        act.outgoing.extend(later);
                        ctx.run_later(RETRY_NOTICES, |act, ctx| {
                            if !act.outgoing.is_empty() {
                                act.persist_in_background(ctx);
                            }
                        });
                    }
                    Err(store_error(e))
                }
            }),
        )
    }

    /// Persists a change nobody waits for (timers, dispatch).
    pub(super) fn persist_in_background(&mut self, ctx: &mut Context<Self>) {
        let fut = self.persist().map(|res, _, _| {
            if let Err(e) = res {
                tracing::warn!(%e, "order not saved");
            }
        });
        ctx.spawn(fut);
    }

    /// Bookkeeping for closed offers (timers, metrics), and the notices their riders and
    /// the dashboard are due once the change is stored. A decliner is not told (it knows).
    pub(super) fn close_offers(
        &mut self,
        closed: Vec<OpenOffer>,
        reason: OfferCloseReason,
        ctx: &mut Context<Self>,
    ) {
        for o in closed {
            if let Some(h) = self.offer_timers.remove(&o.offer.offer_id) {
                ctx.cancel_future(h);
            }
            metrics::counter!(metric_names::OFFERS_TOTAL, "outcome" => reason.as_str())
                .increment(1);
            self.announce(Event::OfferClosed {
                offer_id: o.offer.offer_id.clone(),
                order_id: self.order.order_id.clone(),
                rider_id: o.rider_id.clone(),
                reason,
            });
            if reason != OfferCloseReason::Declined {
                self.tell_rider(
                    &o.rider_id,
                    ToRider::Close(CloseOffer {
                        offer_id: o.offer.offer_id,
                        reason,
                    }),
                );
            }
        }
    }
}
