//! The hub routes engine events to client sockets: merchants get their orders, customers
//! the order they track, dispatchers a batched stream of changes. It never waits on a
//! socket: every socket has its own bounded [`Outbox`]; a full one is disconnected and the
//! dropped frame counted. It also remembers which orders each rider was offered or
//! assigned while the order lives (a rider may read those).
//!
//! Every map has an owner that empties it: a socket's entry goes when the socket ends;
//! a rider's access to an order goes when the order turns final (from then on the engine
//! answers from the stored record: the rider holding it at the end, or offered it).
//! Sizes are exported as `dispatch_hub_entries{map=…}` on every dashboard tick.
//!
//! On a node of several, the orders other nodes own come in too (the city feed hands them
//! in: [`Hub::order_elsewhere`]): dashboards get them in the same `updates` frames, merchant
//! apps and tracking pages the same frames as for this node's orders; snapshots list them.
//! The orders-elsewhere map is bounded (`crate::elsewhere`). Riders of other nodes come
//! from the engine (their nodes send their views): dashboards get them as local riders,
//! snapshots list them (`hub_riders.rs`, `crate::riders_elsewhere`); so do their
//! escalations (`hub_escalations.rs`; the engine keeps them for snapshots), and their
//! orders' rider positions, arrivals and reminders (`hub_notices.rs`).

use crate::elsewhere::{OrdersElsewhere, Put};
use crate::riders_elsewhere::RiderViewsElsewhere;
use crate::ws::frames::{encode, Board, DashboardFrame, MerchantFrame, TrackFrame};
use dispatch_actors::actors::remote::wire::OrderNotice;
use dispatch_actors::domain::escalation::Escalation;
use dispatch_actors::domain::merchant::Merchant;
use dispatch_actors::domain::offers::OfferCloseReason;
use dispatch_actors::domain::order::{Order, OrderStatus};
use dispatch_actors::domain::rider::RiderView;
use dispatch_actors::domain::{EscalationId, MerchantId, OfferId, OrderId, RiderId};
use dispatch_actors::events::Event;
use dispatch_actors::metric_names;
use dispatch_actors::outbox::{Outbox, PushOutcome};
use dispatch_actors::Engine;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub type TextOutbox = Outbox<String>;

/// Live counters shown on the dashboard.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Stats {
    pub offers_accepted: u64,
    pub offers_expired: u64,
    pub median_assign_s: Option<f64>,
}

#[derive(Default)]
struct Pending {
    riders: HashMap<RiderId, Arc<RiderView>>,
    orders: HashMap<OrderId, Arc<Order>>,
    escalations: HashMap<EscalationId, Arc<Escalation>>,
    merchants: HashMap<MerchantId, Arc<Merchant>>,
    stats_changed: bool,
}

#[derive(Default)]
struct StatsBook {
    offers_accepted: u64,
    offers_expired: u64,
    assign_s: VecDeque<f64>,
}

impl StatsBook {
    fn stats(&self) -> Stats {
        let mut v: Vec<f64> = self.assign_s.iter().copied().collect();
        v.sort_by(|a, b| a.total_cmp(b));
        Stats {
            offers_accepted: self.offers_accepted,
            offers_expired: self.offers_expired,
            median_assign_s: (!v.is_empty()).then(|| v[v.len() / 2]),
        }
    }
}

/// How many expired offers of other nodes are remembered, so a note delivered twice
/// counts once (far more than expire between two deliveries of one note).
const EXPIRED_HEARD_CAP: usize = 4096;

/// The offers counted lately, oldest first.
#[derive(Default)]
struct RecentOffers {
    ids: HashSet<OfferId>,
    order: VecDeque<OfferId>,
}

impl RecentOffers {
    /// True the first time `id` is seen (among the last [`EXPIRED_HEARD_CAP`]).
    fn first(&mut self, id: &OfferId) -> bool {
        if !self.ids.insert(id.clone()) {
            return false;
        }
        self.order.push_back(id.clone());
        if self.order.len() > EXPIRED_HEARD_CAP {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }
}

/// Orders riders may read: each rider's orders, and each order's riders (so a final order
/// leaves every rider's set at once).
#[derive(Default)]
struct Access {
    by_rider: HashMap<RiderId, HashSet<OrderId>>,
    by_order: HashMap<OrderId, HashSet<RiderId>>,
}

/// How many entries each of the hub's maps holds (`dispatch_hub_entries{map=…}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubSizes {
    /// Merchants with at least one socket.
    pub merchants: usize,
    /// Orders with at least one tracking socket.
    pub trackers: usize,
    /// Orders with at least one status-only tracking socket (share links).
    pub status_trackers: usize,
    pub dashboards: usize,
    /// Riders with access to at least one live order.
    pub rider_access: usize,
    /// Live orders some rider has access to.
    pub order_riders: usize,
    /// Live orders of other nodes kept for snapshots (several nodes).
    pub orders_elsewhere: usize,
    /// Riders of other nodes kept for snapshots (several nodes).
    pub riders_elsewhere: usize,
}

#[derive(Default)]
pub struct Hub {
    merchants: Mutex<HashMap<MerchantId, Vec<TextOutbox>>>,
    trackers: Mutex<HashMap<OrderId, Vec<TextOutbox>>>,
    /// Tracking sockets that get status changes only, never rider positions (share
    /// links with privacy `status`).
    status_trackers: Mutex<HashMap<OrderId, Vec<TextOutbox>>>,
    dashboards: Mutex<Vec<TextOutbox>>,
    access: RwLock<Access>,
    /// Live orders other nodes own, as the city feed read them (several nodes).
    elsewhere: Mutex<OrdersElsewhere>,
    /// Riders other nodes run, as their nodes last told (several nodes).
    riders_elsewhere: Mutex<RiderViewsElsewhere>,
    pending: Mutex<Pending>,
    stats: Mutex<StatsBook>,
    /// Expired offers of other nodes counted lately: the mesh may deliver a note twice.
    expired_heard: Mutex<RecentOffers>,
    /// The event router and the dashboard tick, awaited at shutdown.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn push(outbox: &TextOutbox, frame: String, socket: &'static str) -> bool {
    match outbox.push(frame) {
        PushOutcome::Queued | PushOutcome::Coalesced => true,
        PushOutcome::Overflowed => {
            metrics::counter!(metric_names::WS_FRAMES_DROPPED_TOTAL, "socket" => socket, "why" => "overflow")
                .increment(1);
            false
        }
        PushOutcome::Closed => false,
    }
}

fn push_all(list: &mut Vec<TextOutbox>, frame: &str, socket: &'static str) {
    list.retain(|o| push(o, frame.to_string(), socket));
}

/// Forgets one socket registered under `key` (it ended), and the key once none is left.
fn remove_keyed<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, Vec<TextOutbox>>>,
    key: &K,
    outbox: &TextOutbox,
) {
    let mut map = map.lock();
    if let Some(list) = map.get_mut(key) {
        list.retain(|o| !o.same(outbox) && !o.is_closed());
        if list.is_empty() {
            map.remove(key);
        }
    }
}

/// Pushes to every socket registered under `key`; forgets the key once none is left.
fn push_keyed<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, Vec<TextOutbox>>>,
    key: &K,
    frame: &str,
    socket: &'static str,
) {
    let mut map = map.lock();
    if let Some(list) = map.get_mut(key) {
        push_all(list, frame, socket);
        if list.is_empty() {
            map.remove(key);
        }
    }
}

impl Hub {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Starts routing the engine's events, and the dashboard batching tick. Both stop
    /// when `shutdown` turns true; [`Hub::stopped`] waits for them.
    pub fn start(
        self: &Arc<Self>,
        engine: &Engine,
        update_interval: Duration,
        shutdown: watch::Receiver<bool>,
    ) {
        let mut rx = engine.subscribe();
        let hub = self.clone();
        let mut stop = shutdown.clone();
        let router = actix_web::rt::spawn(async move {
            loop {
                let ev = tokio::select! {
                    ev = rx.recv() => ev,
                    _ = stop.wait_for(|s| *s) => break,
                };
                match ev {
                    Ok(ev) => hub.route(ev),
                    Err(RecvError::Lagged(n)) => {
                        metrics::counter!(metric_names::EVENTS_DROPPED_TOTAL, "subscriber" => "hub")
                            .increment(n);
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        let hub = self.clone();
        let mut stop = shutdown.clone();
        let ticker = actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(update_interval.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        hub.flush_dashboards();
                        hub.export_sizes();
                    }
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        });
        let riders = self.follow_riders_elsewhere(engine, shutdown.clone());
        let escalations = self.follow_escalations_elsewhere(engine, shutdown.clone());
        let notices = self.follow_order_notices_elsewhere(engine, shutdown.clone());
        self.tasks
            .lock()
            .extend([router, ticker, riders, escalations, notices]);
    }

    /// Have the router and the tick finished (after shutdown)?
    pub fn stopped(&self) -> bool {
        self.tasks.lock().iter().all(JoinHandle::is_finished)
    }

    /// Waits until the router and the tick have finished (they stop at shutdown).
    pub async fn join(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
    }

    pub fn add_merchant(&self, id: MerchantId, o: TextOutbox) {
        self.merchants.lock().entry(id).or_default().push(o);
    }

    pub fn remove_merchant(&self, id: &MerchantId, o: &TextOutbox) {
        remove_keyed(&self.merchants, id, o);
    }

    pub fn add_tracker(&self, id: OrderId, o: TextOutbox) {
        self.trackers.lock().entry(id).or_default().push(o);
    }

    pub fn remove_tracker(&self, id: &OrderId, o: &TextOutbox) {
        remove_keyed(&self.trackers, id, o);
    }

    /// A tracking socket that must never see where the rider is.
    pub fn add_status_tracker(&self, id: OrderId, o: TextOutbox) {
        self.status_trackers.lock().entry(id).or_default().push(o);
    }

    pub fn remove_status_tracker(&self, id: &OrderId, o: &TextOutbox) {
        remove_keyed(&self.status_trackers, id, o);
    }

    pub fn add_dashboard(&self, o: TextOutbox) {
        self.dashboards.lock().push(o);
    }

    pub fn remove_dashboard(&self, o: &TextOutbox) {
        self.dashboards
            .lock()
            .retain(|d| !d.same(o) && !d.is_closed());
    }

    /// Closes every socket's outbox (shutdown).
    pub fn close_all(&self) {
        for l in self.merchants.lock().values() {
            l.iter().for_each(|o| o.close());
        }
        for l in self.trackers.lock().values() {
            l.iter().for_each(|o| o.close());
        }
        for l in self.status_trackers.lock().values() {
            l.iter().for_each(|o| o.close());
        }
        self.dashboards.lock().iter().for_each(|o| o.close());
    }

    pub fn sizes(&self) -> HubSizes {
        let access = self.access.read();
        HubSizes {
            merchants: self.merchants.lock().len(),
            trackers: self.trackers.lock().len(),
            status_trackers: self.status_trackers.lock().len(),
            dashboards: self.dashboards.lock().len(),
            rider_access: access.by_rider.len(),
            order_riders: access.by_order.len(),
            orders_elsewhere: self.elsewhere.lock().len(),
            riders_elsewhere: self.riders_elsewhere.lock().len(),
        }
    }

    fn export_sizes(&self) {
        let s = self.sizes();
        for (map, n) in [
            ("merchants", s.merchants),
            ("trackers", s.trackers),
            ("status_trackers", s.status_trackers),
            ("dashboards", s.dashboards),
            ("rider_access", s.rider_access),
            ("order_riders", s.order_riders),
            ("orders_elsewhere", s.orders_elsewhere),
            ("riders_elsewhere", s.riders_elsewhere),
        ] {
            metrics::gauge!(metric_names::HUB_ENTRIES, "map" => map).set(n as f64);
        }
    }

    /// Was this live order ever offered or assigned to this rider?
    pub fn rider_saw(&self, rider: &RiderId, order: &OrderId) -> bool {
        self.access
            .read()
            .by_rider
            .get(rider)
            .is_some_and(|s| s.contains(order))
    }

    pub fn stats(&self) -> Stats {
        self.stats.lock().stats()
    }

    fn grant(&self, rider: &RiderId, order: &OrderId) {
        let mut a = self.access.write();
        a.by_rider
            .entry(rider.clone())
            .or_default()
            .insert(order.clone());
        a.by_order
            .entry(order.clone())
            .or_default()
            .insert(rider.clone());
    }

    /// A final order: no rider needs the hub's memory of it any more.
    fn revoke_all(&self, order: &OrderId) {
        let mut a = self.access.write();
        let Some(riders) = a.by_order.remove(order) else {
            return;
        };
        for r in riders {
            if let Some(set) = a.by_rider.get_mut(&r) {
                set.remove(order);
                if set.is_empty() {
                    a.by_rider.remove(&r);
                }
            }
        }
    }

    fn route(&self, ev: Event) {
        match ev {
            Event::OrderChanged {
                order,
                previous_status,
            } => self.on_order(order, previous_status),
            Event::RiderChanged { rider } => {
                // This node's actor has it now: its copy is the one to show.
                self.riders_elsewhere.lock().forget(&rider.rider_id);
                self.pending
                    .lock()
                    .riders
                    .insert(rider.rider_id.clone(), rider);
            }
            e @ (Event::RiderMovedForOrder { .. }
            | Event::RiderArriving { .. }
            | Event::MerchantReminded { .. }) => {
                if let Some(n) = OrderNotice::from_event(&e) {
                    self.order_notice(&n);
                }
            }
            Event::OfferSent {
                order_id, rider_id, ..
            } => self.grant(&rider_id, &order_id),
            Event::OfferClosed { reason, .. } => {
                if reason == OfferCloseReason::Expired {
                    self.count_expired_offer();
                }
            }
            Event::EscalationChanged { escalation } => {
                self.pending
                    .lock()
                    .escalations
                    .insert(escalation.escalation_id.clone(), escalation);
            }
            Event::MerchantChanged { merchant } => {
                self.pending
                    .lock()
                    .merchants
                    .insert(merchant.merchant_id.clone(), merchant);
            }
        }
    }

    /// An order another node owns changed (the city feed read it from its zone's
    /// stream, `previous` its status before), or was read from its record (`previous`
    /// None): dashboards get it in their next `updates`, merchant apps and tracking pages
    /// the frames they get for this node's own orders. A copy not newer than the one held
    /// is dropped (the feed may read one write twice): nobody hears of a write twice.
    pub fn order_elsewhere(&self, order: Arc<Order>, previous: Option<OrderStatus>) {
        let put = self.elsewhere.lock().put(order.clone());
        match put {
            Put::Changed | Put::Ended => {
                self.count_assignment(&order, previous);
                self.tell_sockets(&order, previous);
                self.pending
                    .lock()
                    .orders
                    .insert(order.order_id.clone(), order);
            }
            Put::Stale => {}
        }
    }

    /// The live orders other nodes own, as last heard (snapshots).
    pub fn orders_elsewhere(&self) -> Vec<Arc<Order>> {
        self.elsewhere.lock().orders()
    }

    /// The dashboard's live counters, whichever node the order lives on: an order taken
    /// from `accepted` to `assigned` is an offer accepted, its time between the two a
    /// sample of the median (the last 1,000).
    fn count_assignment(&self, order: &Order, previous: Option<OrderStatus>) {
        if previous != Some(OrderStatus::Accepted) || order.status != OrderStatus::Assigned {
            return;
        }
        let mut s = self.stats.lock();
        s.offers_accepted += 1;
        if let (Some(acc), Some(asg)) = (
            order.entered_ms(OrderStatus::Accepted),
            order.entered_ms(OrderStatus::Assigned),
        ) {
            if s.assign_s.len() == 1000 {
                s.assign_s.pop_front();
            }
            s.assign_s
                .push_back(asg.saturating_sub(acc) as f64 / 1000.0);
        }
        drop(s);
        self.pending.lock().stats_changed = true;
    }

    /// An offer ran out unanswered, on this node or another: counted on the dashboard.
    pub(crate) fn count_expired_offer(&self) {
        self.stats.lock().offers_expired += 1;
        self.pending.lock().stats_changed = true;
    }

    /// Another node's offer ran out: counted once however often its note arrives.
    pub(crate) fn count_expired_offer_elsewhere(&self, offer: &OfferId) {
        if self.expired_heard.lock().first(offer) {
            self.count_expired_offer();
        }
    }

    /// Tells the order's merchant apps and tracking pages of a change, wherever the order
    /// lives. `previous` None (a new order, or one read from its record) tells nothing: a
    /// merchant hears of an order once it is paid, and nobody knows what changed.
    fn tell_sockets(&self, order: &Order, previous: Option<OrderStatus>) {
        let Some(previous) = previous else {
            return;
        };
        let status_changed = previous != order.status;
        // merchant app: a paid order is new; later changes are updates
        if order.status != OrderStatus::PendingPayment
            && self.merchants.lock().contains_key(&order.merchant_id)
        {
            let frame = if order.status == OrderStatus::Paid && status_changed {
                MerchantFrame::NewOrder { order }
            } else {
                MerchantFrame::OrderUpdated { order }
            };
            let frame = encode(&frame);
            push_keyed(&self.merchants, &order.merchant_id, &frame, "merchant");
        }
        // customer tracking: status changes
        if status_changed {
            let at_ms = order
                .timeline
                .last()
                .map(|e| e.at_ms)
                .unwrap_or(order.updated_ms);
            let frame = encode(&TrackFrame::Status {
                order_id: &order.order_id,
                status: order.status,
                at_ms,
            });
            push_keyed(&self.trackers, &order.order_id, &frame, "track");
            push_keyed(&self.status_trackers, &order.order_id, &frame, "track");
        }
    }

    fn on_order(&self, order: Arc<Order>, previous: Option<OrderStatus>) {
        // This node's actor has it now (its zone moved here): its copy is the one to show.
        self.elsewhere.lock().forget(&order.order_id);
        if order.status.is_final() {
            self.revoke_all(&order.order_id);
        } else if let Some(r) = &order.rider_id {
            self.grant(r, &order.order_id);
        }
        self.count_assignment(&order, previous);
        self.tell_sockets(&order, previous);
        self.pending
            .lock()
            .orders
            .insert(order.order_id.clone(), order);
    }

    fn flush_dashboards(&self) {
        let batch = {
            let mut p = self.pending.lock();
            if p.riders.is_empty()
                && p.orders.is_empty()
                && p.escalations.is_empty()
                && p.merchants.is_empty()
                && !p.stats_changed
            {
                return;
            }
            std::mem::take(&mut *p)
        };
        let mut dashboards = self.dashboards.lock();
        if dashboards.is_empty() {
            return;
        }
        let riders: Vec<_> = batch.riders.into_values().collect();
        let orders: Vec<_> = batch.orders.into_values().collect();
        let escalations: Vec<_> = batch.escalations.into_values().collect();
        let merchants: Vec<_> = batch.merchants.into_values().collect();
        let frame = encode(&DashboardFrame::Updates(Board {
            riders: &riders,
            orders: &orders,
            escalations: &escalations,
            merchants: &merchants,
            stats: self.stats(),
        }));
        push_all(&mut dashboards, &frame, "dispatch");
    }
}

#[path = "hub_follow.rs"]
mod follow;
#[path = "hub_riders.rs"]
mod riders;

#[path = "hub_escalations.rs"]
mod escalations;

#[path = "hub_notices.rs"]
mod notices;

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
