//! Merchant apps and tracking pages on any node hear this node's orders' notices
//! (docs/cluster.md, "The whole city on every socket"): rider positions for tracking
//! pages, "rider arriving" and reminders for merchant apps. An order's actor raises them
//! on its own node's bus only; its hub reaches the sockets connected here, and this
//! collector sends them to every peer for the sockets connected there. What a node hears
//! goes to its hub (read through `Engine::order_notices_elsewhere`), never onto its bus:
//! the hub of the order's node already had it, and a peer does not pass on what it heard.
//!
//! As the roster does for riders' views, one note every [`FLUSH`] (the same to every
//! peer). Positions are coalesced, latest per order (a page shows where the rider is
//! now); arrivals and reminders are each a message of their own, so they queue, capped.

use super::coalesce::Coalesced;
use super::remote::wire::{Call, OrderNotice};
use super::remote::Peers;
use super::Shared;
use crate::domain::OrderId;
use crate::events::Event;
use crate::metric_names;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::broadcast;

/// How often collected notices go out.
pub const FLUSH: Duration = Duration::from_millis(500);

/// How many notices one note carries at most: a mesh entry stays small.
pub const NOTICES_PER_NOTE: usize = 500;

/// How many orders' positions, and how many arrivals and reminders, wait for a flush.
/// A node runs far fewer live orders; the cap bounds a fault (or a mesh away).
pub const PENDING_CAP: usize = 20_000;

/// How many notes heard wait for the hub (one per peer per [`FLUSH`]). A hub further
/// behind loses the oldest (it counts them).
pub const HEARD_CAPACITY: usize = 1024;

/// Notices of another node's orders, as one note carried them (for the hub).
pub type NoticesHeard = Arc<Vec<OrderNotice>>;

pub struct OrderNotices {
    /// Set once the node joined others: a node of its own keeps nothing for peers.
    on: AtomicBool,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Rider positions not sent yet, latest per order.
    moves: Coalesced<OrderId, OrderNotice>,
    /// Arrivals and reminders not sent yet, oldest first.
    messages: VecDeque<OrderNotice>,
}

impl Default for OrderNotices {
    fn default() -> Self {
        OrderNotices {
            on: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                moves: Coalesced::new(PENDING_CAP),
                messages: VecDeque::new(),
            }),
        }
    }
}

fn dropped(what: &'static str, n: u64) {
    metrics::counter!(metric_names::PEER_CHANGES_DROPPED_TOTAL, "what" => what).increment(n);
}

impl OrderNotices {
    /// From now on notices are kept for peers (this node joined others).
    pub fn turn_on(&self) {
        self.on.store(true, Ordering::Relaxed);
    }

    /// An event this node's order actor publishes: kept for peers if it is one of the
    /// notices for merchant apps and tracking pages.
    pub fn put(&self, event: &Event) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        let Some(notice) = OrderNotice::from_event(event) else {
            return;
        };
        let mut inner = self.inner.lock();
        let kept = match &notice {
            OrderNotice::RiderMovedForOrder { order_id, .. } => {
                inner.moves.put(order_id.clone(), notice)
            }
            _ if inner.messages.len() >= PENDING_CAP => false,
            _ => {
                inner.messages.push_back(notice);
                true
            }
        };
        if !kept {
            dropped("order_notices", 1);
        }
    }

    /// Everything waiting, arrivals and reminders first; empty afterwards.
    fn take(&self) -> Vec<OrderNotice> {
        let mut inner = self.inner.lock();
        let mut all: Vec<_> = inner.messages.drain(..).collect();
        all.extend(inner.moves.take());
        all
    }

    /// The notes for each of `peers`, each encoded once and at most
    /// [`NOTICES_PER_NOTE`] notices long.
    fn notes(&self, peers: &[Arc<str>]) -> Vec<(Arc<str>, Arc<str>)> {
        let all = self.take();
        if peers.is_empty() {
            return Vec::new();
        }
        let notes: Vec<Arc<str>> = all
            .chunks(NOTICES_PER_NOTE)
            .map(|c| {
                Call::OrderNotices {
                    notices: c.to_vec(),
                }
                .encode()
                .into()
            })
            .collect();
        peers
            .iter()
            .flat_map(|p| notes.iter().map(move |n| (p.clone(), n.clone())))
            .collect()
    }
}

/// Sends this node's collected notices to its peers every [`FLUSH`] until the engine
/// stops.
pub fn spawn_flusher(shared: Weak<Shared>, peers: Arc<dyn Peers>) {
    super::peer_notes::spawn_flusher(shared, peers, FLUSH, |s| {
        s.order_notices.notes(&s.fleet.peers())
    });
}

/// Notices of another node's orders: to this node's hub (nobody listening, no hub:
/// nothing to keep).
pub fn heard(shared: &Shared, notices: Vec<OrderNotice>) {
    if !notices.is_empty() {
        let _ = shared.order_notices_elsewhere.send(Arc::new(notices));
    }
}

/// The channel heard notices go out on.
pub fn channel() -> broadcast::Sender<NoticesHeard> {
    broadcast::channel(HEARD_CAPACITY).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CustomerId, GeoPoint, MerchantId, RiderId};

    fn order(n: u32) -> OrderId {
        OrderId::parse(&format!("o_{n}")).unwrap()
    }

    fn merchant() -> MerchantId {
        MerchantId::parse("m_1").unwrap()
    }

    fn moved(n: u32, ts_ms: u64) -> Event {
        Event::RiderMovedForOrder {
            order_id: order(n),
            customer_id: CustomerId::parse("c_1").unwrap(),
            merchant_id: merchant(),
            rider_id: RiderId::parse("r_1").unwrap(),
            location: GeoPoint::new(52.5, 13.4).unwrap(),
            ts_ms,
            eta_s: 60,
        }
    }

    fn reminded(n: u32) -> Event {
        Event::MerchantReminded {
            merchant_id: merchant(),
            order_id: order(n),
            message: format!("order o_{n} is waiting"),
        }
    }

    fn decoded(note: &str) -> Vec<OrderNotice> {
        match serde_json::from_str::<Call>(note).unwrap() {
            Call::OrderNotices { notices } => notices,
            other => panic!("not notices: {other:?}"),
        }
    }

    fn node(s: &str) -> Arc<str> {
        s.into()
    }

    #[test]
    fn positions_coalesce_per_order_and_messages_all_go_in_order() {
        let n = OrderNotices::default();
        n.turn_on();
        n.put(&moved(1, 1));
        n.put(&reminded(1));
        n.put(&moved(2, 2));
        n.put(&moved(1, 3));
        n.put(&reminded(1));
        n.put(&Event::RiderArriving {
            order_id: order(2),
            merchant_id: merchant(),
            eta_s: 30,
        });
        let notes = n.notes(&[node("b"), node("c")]);
        assert_eq!(notes.len(), 2, "one note per peer");
        assert_eq!(notes[0].1, notes[1].1, "the same note to every peer");
        let got = decoded(&notes[0].1);
        let want: Vec<_> = [
            reminded(1),
            reminded(1),
            Event::RiderArriving {
                order_id: order(2),
                merchant_id: merchant(),
                eta_s: 30,
            },
            moved(1, 3),
            moved(2, 2),
        ]
        .iter()
        .map(|e| OrderNotice::from_event(e).unwrap())
        .collect();
        assert_eq!(got, want);
        assert!(n.notes(&[node("b")]).is_empty(), "drained");
    }

    #[test]
    fn other_events_and_a_node_of_its_own_keep_nothing() {
        use crate::domain::offers::OfferCloseReason;
        let offer_id = crate::domain::OfferId::generate();
        let closed = |reason| Event::OfferClosed {
            offer_id: offer_id.clone(),
            order_id: order(1),
            rider_id: RiderId::parse("r_1").unwrap(),
            reason,
        };
        let n = OrderNotices::default();
        n.put(&moved(1, 1));
        n.put(&closed(OfferCloseReason::Expired));
        n.turn_on();
        n.put(&closed(OfferCloseReason::Declined));
        assert!(n.take().is_empty());
        // An offer that ran out is counted on every dashboard.
        n.put(&closed(OfferCloseReason::Expired));
        assert_eq!(
            n.take(),
            vec![OrderNotice::OfferExpired {
                order_id: order(1),
                offer_id
            }]
        );
    }

    #[test]
    fn no_peers_drains_too() {
        let n = OrderNotices::default();
        n.turn_on();
        n.put(&moved(1, 1));
        assert!(n.notes(&[]).is_empty());
        assert!(n.take().is_empty());
    }

    #[test]
    fn messages_are_capped_and_a_big_flush_goes_in_several_notes() {
        let n = OrderNotices::default();
        n.turn_on();
        for _ in 0..PENDING_CAP + 5 {
            n.put(&reminded(1));
        }
        // A known order's position still replaces; the queue does not hold it.
        n.put(&moved(1, 1));
        let all = n.take();
        assert_eq!(all.len(), PENDING_CAP + 1);
        n.put(&reminded(1));
        for i in 0..NOTICES_PER_NOTE as u32 {
            n.put(&moved(i, 1));
        }
        let notes = n.notes(&[node("b")]);
        assert_eq!(notes.len(), 2);
        assert_eq!(decoded(&notes[1].1).len(), 1);
    }
}
