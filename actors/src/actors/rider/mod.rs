//! One actor per rider, alive as long as the rider exists. A WebSocket session attaches an
//! [`Outbox`] and detaches on disconnect, so a reconnect finds the rider's state (orders in
//! hand, an open offer) intact. Everything the rider is told goes through that outbox.
//!
//! - this file: the actor's state, what the rider is told, and keeping the matcher,
//!   gauges and subscribers in line with it (`settle`);
//! - `commands`: what the rider app says (GPS, online, accept, decline, reports); fixes
//!   arrive through the rider's latest-fix-wins slot (`crate::fix_slot`), the rest in order
//!   through the mailbox;
//! - `supervision`: the silence timers (rider_silent, rider_lost) and their ladder;
//! - `handlers`: the messages it answers (docs: `crate::protocol`).

mod commands;
mod handlers;
mod supervision;

use super::directory::SharedFixSlot;
use super::matcher::{DrainFeed, UpsertRider};
use super::timers::TimerSet;
use super::Shared;
use crate::config::Policy;
use crate::domain::rider::{RiderState, RiderStatus};
use crate::domain::{GeoPoint, OfferId, OrderId};
use crate::events::Event;
use crate::matcher::feed::Change;
use crate::matcher::Placement;
use crate::metric_names;
use crate::outbox::{Outbox, PushOutcome};
use crate::protocol::RiderNotice;
use actix::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;

type MatcherEntry = (GeoPoint, bool, Option<(u64, GeoPoint)>, Option<u64>);

pub struct RiderActor {
    state: RiderState,
    shared: Arc<Shared>,
    session: Option<Outbox<RiderNotice>>,
    /// The rider's latest-fix-wins slot: the engine puts fixes in, `FixWaiting` takes one.
    fixes: SharedFixSlot,
    /// rider_silent and rider_lost, counted from the last accepted fix.
    timers: TimerSet,
    /// When the rider was last heard from (engine ms): the silence timers count from here.
    /// A fix only moves this; a timer that fires early for it re-arms itself
    /// (`supervision`), so a fix costs no timer work.
    heard_ms: u64,
    /// What the matcher holds for this rider: (position, available, free at), or None.
    in_matcher: Option<MatcherEntry>,
    /// Orders of the held offer (a bundle) that have not proposed it yet: the rider sees
    /// the offer once every order has.
    awaiting_legs: HashSet<OrderId>,
    gauge_status: Option<RiderStatus>,
    /// The offer last published to subscribers, so a next-job offer (the status stays
    /// `busy`) still reaches the dashboard.
    published_offer: Option<OfferId>,
    /// The orders in hand as the store's rider record last had them: a rider rebuilt on
    /// another node (its own died) finds its orders through that record, so a change of
    /// them is saved even when the status stays (a second order while `busy`).
    saved_orders: Vec<OrderId>,
    /// Recovery: when the rider was last heard from, to re-arm its silence timers at their
    /// original due times once started.
    restored_heard_ms: Option<u64>,
    /// Recovery: the status of the rider's view in the store.
    restored_status: Option<RiderStatus>,
}

impl RiderActor {
    /// A rider's actor, taking its fixes from `fixes` (listed in the directory for the
    /// engine to put them in).
    pub fn new(state: RiderState, shared: Arc<Shared>, fixes: SharedFixSlot) -> Self {
        Self {
            state,
            shared,
            session: None,
            fixes,
            timers: TimerSet::default(),
            heard_ms: 0,
            in_matcher: None,
            awaiting_legs: HashSet::new(),
            gauge_status: None,
            published_offer: None,
            saved_orders: Vec::new(),
            restored_heard_ms: None,
            restored_status: None,
        }
    }

    /// A rider coming back from the store after a restart. Its silence timers count from
    /// `heard_ms` (its last fix), so one already past fires at once. The store holds its
    /// view with `stored_status`, and the engine puts every restored rider in the matcher
    /// at once ([`RiderActor::matcher_upsert`]): once started, it saves and announces its
    /// view only if its status differs from the stored one, and sends the matcher nothing.
    pub fn restore(
        state: RiderState,
        shared: Arc<Shared>,
        fixes: SharedFixSlot,
        heard_ms: u64,
        stored_status: RiderStatus,
    ) -> Self {
        let mut a = Self::new(state, shared, fixes);
        a.restored_heard_ms = Some(heard_ms);
        a.restored_status = Some(stored_status);
        a.in_matcher = a.matcher_entry();
        a.published_offer = a.state.offer.as_ref().map(|o| o.offer_id.clone());
        a.saved_orders = a.state.orders.iter().map(|o| o.order_id.clone()).collect();
        a
    }

    /// What the matcher should hold for this rider now (None: not in it).
    fn matcher_entry(&self) -> Option<MatcherEntry> {
        match (self.state.position(), self.state.status()) {
            (Some(p), RiderStatus::Idle | RiderStatus::Offered | RiderStatus::Busy) => {
                let next_job = self.next_job_window();
                Some((
                    p,
                    self.state.available_for_offers() || next_job.is_some(),
                    next_job,
                    self.state.shift_end_ms,
                ))
            }
            _ => None,
        }
    }

    /// The matcher's entry of this rider as a message (recovery loads them in bulk).
    /// A rider whose actor moved here from another node (or is rebuilt here after its
    /// node died): as [`RiderActor::restore`], but nothing here holds its matcher entry
    /// yet, so it places itself (here and with the peers) as it starts.
    pub fn moved_in(
        state: RiderState,
        shared: Arc<Shared>,
        fixes: SharedFixSlot,
        heard_ms: u64,
        stored_status: RiderStatus,
    ) -> Self {
        let mut a = Self::restore(state, shared, fixes, heard_ms, stored_status);
        a.in_matcher = None;
        // What its old node handed over may be newer than the store's record: saved once
        // started if it holds any order.
        a.saved_orders.clear();
        a
    }

    pub fn matcher_upsert(&self) -> Option<UpsertRider> {
        self.in_matcher
            .map(|(point, available, busy_until, shift_end_ms)| UpsertRider {
                rider_id: self.state.rider_id.clone(),
                point,
                available,
                busy_until,
                shift_end_ms,
            })
    }

    pub(super) fn tell(&mut self, notice: RiderNotice) {
        let Some(outbox) = &self.session else { return };
        match outbox.push(notice) {
            PushOutcome::Queued | PushOutcome::Coalesced => {}
            PushOutcome::Overflowed => {
                metrics::counter!(metric_names::WS_FRAMES_DROPPED_TOTAL, "socket" => "rider", "why" => "overflow")
                    .increment(1);
                self.session = None;
            }
            PushOutcome::Closed => self.session = None,
        }
    }

    /// Under `batch`, a busy rider finishing soon: when and where it will be free.
    pub(super) fn next_job_window(&self) -> Option<(u64, GeoPoint)> {
        let d = &self.shared.cfg.dispatch;
        if d.policy != Policy::Batch {
            return None;
        }
        self.state
            .next_job_window(self.shared.now_ms(), d.speed_mps, d.next_job_s)
    }

    /// May an order offer itself to this rider now?
    pub(super) fn may_hold_offer(&self) -> bool {
        self.state.available_for_offers() || self.next_job_window().is_some()
    }

    pub(super) fn connected(&self) -> bool {
        self.session.as_ref().is_some_and(|s| !s.is_closed())
    }

    /// Applies one change to the rider's state, tells the rider what the change returns (if
    /// anything), then settles, so every such change reaches the matcher the same way.
    pub(super) fn update(&mut self, change: impl FnOnce(&mut RiderState) -> Option<RiderNotice>) {
        let before = self.state.status();
        if let Some(notice) = change(&mut self.state) {
            self.tell(notice);
        }
        self.settle(before, false);
    }

    /// Brings the matcher, gauges and subscribers in line with the rider's state after a
    /// change. Called at the end of every handler that may change something.
    pub(super) fn settle(&mut self, before: RiderStatus, moved: bool) {
        let status = self.state.status();
        let want = self.matcher_entry();
        if want != self.in_matcher {
            let rider_id = self.state.rider_id.clone();
            let change = match want {
                Some((point, available, busy_until, shift_end_ms)) => Change::Place(Placement {
                    rider_id,
                    point,
                    available,
                    busy_until,
                    shift_end_ms,
                }),
                None => Change::Remove(rider_id),
            };
            if self.shared.peers.get().is_some() {
                self.shared.fleet.put(&change);
            }
            if self.shared.matcher_feed.put(change) {
                self.shared.matcher.do_send(DrainFeed);
            }
            self.in_matcher = want;
        }
        if self.gauge_status != Some(status) {
            if let Some(old) = self.gauge_status {
                metrics::gauge!(metric_names::RIDERS, "status" => old.as_str()).decrement(1.0);
            }
            metrics::gauge!(metric_names::RIDERS, "status" => status.as_str()).increment(1.0);
            self.gauge_status = Some(status);
        }
        let offer_now = self.state.offer.as_ref().map(|o| o.offer_id.clone());
        let offer_changed = offer_now != self.published_offer;
        let orders_changed = !self
            .state
            .orders
            .iter()
            .map(|o| &o.order_id)
            .eq(self.saved_orders.iter());
        if status != before || moved || offer_changed || orders_changed {
            self.published_offer = offer_now;
            let view = self.state.view();
            if status != before || orders_changed {
                self.saved_orders.clone_from(&view.order_ids);
                let store = self.shared.store.clone();
                let v = view.clone();
                actix::spawn(async move {
                    if let Err(e) = store.save_rider(&v).await {
                        tracing::warn!(%e, "rider not saved");
                    }
                });
            }
            let view = Arc::new(view);
            if self.shared.peers.get().is_some() {
                self.shared.roster.put(view.clone());
            }
            self.shared.bus.publish(Event::RiderChanged { rider: view });
        }
    }
}

impl Actor for RiderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let before = self.restored_status.take().unwrap_or(RiderStatus::Offline);
        self.settle(before, false);
        if let Some(heard) = self.restored_heard_ms.take() {
            if self.supervised() {
                self.arm_silence_from(heard, ctx);
            }
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        // Stopped here (handed over, or the engine stops): a new peer hears of the rider
        // from its new node.
        self.shared.roster.forget(&self.state.rider_id);
        if let Some(s) = self.gauge_status {
            metrics::gauge!(metric_names::RIDERS, "status" => s.as_str()).decrement(1.0);
        }
    }
}
