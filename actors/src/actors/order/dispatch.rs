//! Dispatch of one order: ask the matcher for candidates, rank them (DispatchPolicy),
//! offer the best one, widen or wait when nobody is in range, expire and withdraw offers.
//! An offer is stored before its rider sees it.

use super::notices::ToRider;
use super::OrderActor;
use crate::actors::remote::wire::RiderMsg;
use crate::config::secs;
use crate::domain::dispatch::WhenEmpty;
use crate::domain::escalation::EscalationKind;
use crate::domain::ladder::{self, Step, Timer};
use crate::domain::offers::{
    CandidateTrace, Offer, OfferCloseReason, OfferLeg, SkippedTrace, TraceEntry,
};
use crate::domain::order::{OrderCommand, OrderStatus, Transition};
use crate::domain::{OfferId, RiderId};
use crate::error::EngineError;
use crate::events::Event;
use crate::matcher::Nearby;
use crate::metric_names;
use crate::plan::book::PlanEntry;
use crate::protocol::{CloseOffer, LegClosed, Planned};
use actix::prelude::*;
use std::time::Duration;

use crate::actors::matcher::{FindCandidates, StopWaiting, WaitForRider};
use crate::actors::planner::{PlanOrder, PlannerActor, Unplan};

impl OrderActor {
    /// Called as the order becomes `accepted`: counts from that change.
    pub(super) fn start_dispatch(&mut self, ctx: &mut Context<Self>) {
        self.dispatch_gen += 1;
        self.radius_m = self.policy.initial_radius_m();
        self.dispatch_started_ms = self.order.updated_ms;
        self.arm(
            Timer::DispatchRemind,
            self.dispatch_started_ms,
            self.shared.cfg.timers.dispatch_remind_s,
            true,
            ctx,
        );
        self.try_dispatch(ctx);
    }

    /// The order's place in the queue for scarce riders: when it was first accepted.
    fn waiting_since_ms(&self) -> u64 {
        self.order
            .timeline
            .iter()
            .find(|e| e.status == OrderStatus::Accepted)
            .map_or(self.dispatch_started_ms, |e| e.at_ms)
    }

    /// Tells the matcher whether this order is starved of riders (see `WaitingOrders`).
    pub(super) fn set_waiting(&mut self, waiting: bool) {
        if waiting {
            self.shared.matcher.do_send(WaitForRider {
                order_id: self.order.order_id.clone(),
                waiting: crate::waiting::Waiting {
                    since_ms: self.waiting_since_ms(),
                    at: self.order.pickup.point(),
                    radius_m: self.radius_m,
                    exclude: self.offers.excluded(),
                },
            });
        } else if self.waiting {
            self.shared
                .matcher
                .do_send(StopWaiting(self.order.order_id.clone()));
        }
        self.waiting = waiting;
    }

    /// Batch policy: the order waits for the planner's next round (or one of its own as it
    /// falls due); the planner answers with `Planned`. Registering again replaces the
    /// entry (a wider radius, a new decliner).
    fn wait_for_plan(&mut self, planner: Addr<PlannerActor>, ctx: &mut Context<Self>) {
        let now = self.now();
        planner.do_send(PlanOrder {
            entry: PlanEntry {
                order_id: self.order.order_id.clone(),
                merchant_id: self.order.merchant_id.clone(),
                pickup: self.order.pickup.point(),
                dropoff: self.order.dropoff,
                placed_ms: self.waiting_since_ms(),
                ready_at_ms: self.order.ready_at_ms.unwrap_or(now),
                radius_m: self.radius_m,
                exclude: &self.offers.excluded() - &self.offers.expired_riders(),
                expired: self.offers.expired_riders(),
            },
            reply: ctx.address().recipient(),
        });
        if !self.planned {
            self.trace(
                format!("waiting for a planning round (within {} m)", self.radius_m),
                vec![],
            );
        }
        self.planned = true;
    }

    /// No longer waiting for the planner (assigned, final, relinquished).
    pub(super) fn leave_plan(&mut self) {
        if std::mem::take(&mut self.planned) {
            if let Some(planner) = &self.shared.planner {
                planner.do_send(Unplan(self.order.order_id.clone()));
            }
        }
    }

    pub(super) fn stop_dispatch(&mut self, ctx: &mut Context<Self>) {
        self.set_waiting(false);
        self.leave_plan();
        self.dispatch_gen += 1;
        self.timers.disarm(Timer::DispatchRemind, ctx);
        if let Some(h) = self.retry.take() {
            ctx.cancel_future(h);
        }
        self.clear(vec![EscalationKind::NoRider]);
    }

    pub(super) fn trace(&mut self, event: String, candidates: Vec<CandidateTrace>) {
        self.trace_search(event, candidates, Vec::new());
    }

    fn trace_search(
        &mut self,
        event: String,
        candidates: Vec<CandidateTrace>,
        skipped: Vec<SkippedTrace>,
    ) {
        self.offers.record(TraceEntry {
            at_ms: self.now(),
            radius_m: self.radius_m,
            event,
            candidates,
            skipped,
        });
    }

    fn candidate_trace(&self, c: &Nearby, decision: &str) -> CandidateTrace {
        CandidateTrace {
            rider_id: c.rider_id.clone(),
            distance_m: c.distance_m.round(),
            travel_s: self.policy.travel_s(c.distance_m).round(),
            decision: decision.into(),
            cost_s: None,
        }
    }

    pub(super) fn try_dispatch(&mut self, ctx: &mut Context<Self>) {
        let cfg = &self.shared.cfg.dispatch;
        if self.order.status != OrderStatus::Accepted
            || self.in_flight == Some(self.dispatch_gen)
            || !self.policy.wants_more_offers(self.offers.open_count())
        {
            return;
        }
        if !self.shared.store.writable() {
            // An offer that could not be stored must not be sent: try again later.
            self.schedule_retry(ctx);
            return;
        }
        if let Some(planner) = self.shared.planner.clone() {
            return self.wait_for_plan(planner, ctx);
        }
        let gen = self.dispatch_gen;
        self.in_flight = Some(gen);
        let query = FindCandidates {
            order_id: self.order.order_id.clone(),
            since_ms: self.waiting_since_ms(),
            at: self.order.pickup.point(),
            k: cfg.candidates_k.max(1),
            radius_m: self.radius_m,
            exclude: self.offers.excluded(),
        };
        let skipped = self.offers.skipped();
        ctx.spawn(
            self.shared
                .matcher
                .send(query)
                .into_actor(self)
                .map(move |res, act, ctx| {
                    if act.in_flight == Some(gen) {
                        act.in_flight = None;
                    }
                    if gen != act.dispatch_gen || act.order.status != OrderStatus::Accepted {
                        return;
                    }
                    match res {
                        Ok(cands) => act.on_candidates(cands, skipped, ctx),
                        Err(_) => act.schedule_retry(ctx),
                    }
                }),
        );
    }

    fn on_candidates(
        &mut self,
        cands: Vec<Nearby>,
        skipped: Vec<SkippedTrace>,
        ctx: &mut Context<Self>,
    ) {
        let cands = self
            .policy
            .within_shift(cands, self.now(), self.order.ready_at_ms);
        let cands = self.policy.rank(cands);
        if !cands.is_empty() {
            self.set_waiting(false);
        }
        let traced = cands
            .iter()
            .map(|c| self.candidate_trace(c, "candidate"))
            .collect();
        self.trace_search(
            format!(
                "search within {} m: {} candidates ({} riders skipped: declined, expired or already offered)",
                self.radius_m,
                cands.len(),
                skipped.len()
            ),
            traced,
            skipped,
        );
        if !cands.is_empty() {
            return self.propose(cands, 0, None, ctx);
        }
        let step = self.policy.when_empty(
            self.radius_m,
            self.offers.open_count(),
            self.offers.expired_count(),
        );
        match step {
            WhenEmpty::Widen(r) => {
                self.radius_m = r;
                self.try_dispatch(ctx);
            }
            WhenEmpty::ForgiveExpired => {
                self.offers.forgive_expired();
                self.trace(
                    "nobody new in range: riders who let an offer expire may be offered again"
                        .into(),
                    vec![],
                );
                self.try_dispatch(ctx);
            }
            WhenEmpty::RetryLater => {
                self.set_waiting(true);
                self.schedule_retry(ctx);
            }
        }
    }

    fn schedule_retry(&mut self, ctx: &mut Context<Self>) {
        if self.retry.is_some() || self.order.status != OrderStatus::Accepted {
            return;
        }
        let delay = secs(self.shared.cfg.dispatch.retry_interval_s);
        self.retry = Some(ctx.run_later(delay, |act, ctx| {
            act.retry = None;
            act.try_dispatch(ctx);
        }));
    }

    /// Offers the order to candidate `i` (or the next one that can be asked). The offer is
    /// open in the book, and stored, before the rider sees it, so an accept that arrives
    /// at once is a valid claim and a restart still knows the offer. A planned offer
    /// (`shape`) carries the planner's offer id and legs (a bundle shares them).
    fn propose(
        &mut self,
        cands: Vec<Nearby>,
        i: usize,
        shape: Option<(OfferId, Vec<OfferLeg>)>,
        ctx: &mut Context<Self>,
    ) {
        if i >= cands.len() || !self.policy.wants_more_offers(self.offers.open_count()) {
            if self.offers.open_count() == 0 {
                self.schedule_retry(ctx);
            }
            return;
        }
        let c = cands[i].clone();
        if self.shared.rider_ref(&c.rider_id).is_none() {
            return self.propose(cands, i + 1, None, ctx);
        }
        let (offer_id, orders) = shape.unwrap_or_else(|| {
            let leg = OfferLeg {
                order_id: self.order.order_id.clone(),
                dropoff: self.order.dropoff,
                ready_at_ms: self.order.ready_at_ms,
            };
            (OfferId::generate(), vec![leg])
        });
        let first = orders.first().cloned();
        let offer = Offer {
            offer_id,
            order_id: first
                .as_ref()
                .map_or_else(|| self.order.order_id.clone(), |l| l.order_id.clone()),
            pickup: self.order.pickup.clone(),
            dropoff: first.as_ref().map_or(self.order.dropoff, |l| l.dropoff),
            ready_at_ms: first.map_or(self.order.ready_at_ms, |l| l.ready_at_ms),
            expires_at_ms: self.now() + (self.shared.cfg.timers.offer_ttl_s * 1000.0) as u64,
            distance_m: c.distance_m.round(),
            orders,
        };
        let gen = self.dispatch_gen;
        self.in_flight = Some(gen);
        self.offer_opened(offer.clone(), &c, ctx);
        let asked = self
            .persist()
            .then(move |stored, act, _ctx| {
                let rider = act.shared.rider_ref(&c.rider_id);
                let current = gen == act.dispatch_gen && act.order.status == OrderStatus::Accepted;
                let stored = stored.is_ok();
                let proposal = match rider {
                    Some(rider) if stored && current => {
                        Some(rider.propose(offer.clone(), act.order.order_id.clone()))
                    }
                    _ => None,
                };
                async move {
                    let asked = proposal.is_some();
                    let taken = match proposal {
                        Some(p) => p.await,
                        None => false,
                    };
                    (taken, asked, stored, offer, c)
                }
                .into_actor(act)
            })
            .map(move |(taken, asked, stored, offer, c), act, ctx| {
                if act.in_flight == Some(gen) {
                    act.in_flight = None;
                }
                let still_open = act.offers.get(&offer.offer_id).is_some();
                let current = gen == act.dispatch_gen && act.order.status == OrderStatus::Accepted;
                if !taken {
                    if still_open {
                        // The rider may hold the other orders of a bundle: it drops them.
                        let tell = offer.is_bundle().then_some(&c.rider_id);
                        act.withdraw_offer(&offer.offer_id, tell, ctx);
                    }
                    if asked {
                        act.trace(format!("skipped {}: not idle any more", c.rider_id), vec![]);
                    }
                } else if still_open && !current {
                    // Dispatch moved on while the rider was being asked.
                    act.withdraw_offer(&offer.offer_id, Some(&c.rider_id), ctx);
                }
                if current && stored {
                    act.propose(cands, i + 1, None, ctx);
                } else if current {
                    // The store is away: an offer that cannot be stored is not sent.
                    act.schedule_retry(ctx);
                }
            });
        ctx.spawn(asked);
    }

    /// Records an offer as open: trace, event, expiry timer.
    fn offer_opened(&mut self, offer: Offer, c: &Nearby, ctx: &mut Context<Self>) {
        let now = self.now();
        metrics::counter!(metric_names::OFFERS_TOTAL, "outcome" => "sent").increment(1);
        metrics::histogram!(metric_names::OFFER_LATENCY_SECONDS)
            .record(now.saturating_sub(self.dispatch_started_ms) as f64 / 1000.0);
        let traced = vec![self.candidate_trace(c, "offered")];
        let what = if offer.is_bundle() {
            let ids: Vec<String> = offer.order_ids().iter().map(|o| o.to_string()).collect();
            format!(" (a bundle of {}: {})", ids.len(), ids.join(", "))
        } else {
            String::new()
        };
        self.trace(
            format!("offered {} to {}{what}", offer.offer_id, c.rider_id),
            traced,
        );
        self.announce(Event::OfferSent {
            offer_id: offer.offer_id.clone(),
            order_id: self.order.order_id.clone(),
            rider_id: c.rider_id.clone(),
            expires_at_ms: offer.expires_at_ms,
        });
        self.arm_offer_expiry(offer.offer_id.clone(), offer.expires_at_ms, ctx);
        self.offers.add(offer, c.rider_id.clone(), now);
    }

    pub(super) fn arm_offer_expiry(
        &mut self,
        id: OfferId,
        expires_ms: u64,
        ctx: &mut Context<Self>,
    ) {
        let delay = Duration::from_millis(expires_ms.saturating_sub(self.now()));
        let key = id.clone();
        let h = ctx.run_later(delay, move |act, ctx| act.expire_offer(key, ctx));
        self.offer_timers.insert(id, h);
    }

    /// Takes back an offer its rider never held (not idle, or dispatch moved on); a rider
    /// who may have seen it (`tell`) hears it was withdrawn.
    fn withdraw_offer(&mut self, id: &OfferId, tell: Option<&RiderId>, ctx: &mut Context<Self>) {
        if let Some(h) = self.offer_timers.remove(id) {
            ctx.cancel_future(h);
        }
        if self.offers.withdraw(id).is_some() {
            metrics::counter!(metric_names::OFFERS_TOTAL, "outcome" => "refused").increment(1);
            if let Some(rider) = tell {
                self.tell_rider(
                    rider,
                    ToRider::Close(CloseOffer {
                        offer_id: id.clone(),
                        reason: OfferCloseReason::Withdrawn,
                    }),
                );
            }
            self.persist_in_background(ctx);
        }
    }

    /// `offer_ttl_s` passed: the offer closes `expired` and the next candidate is tried.
    pub(super) fn expire_offer(&mut self, id: OfferId, ctx: &mut Context<Self>) {
        self.offer_timers.remove(&id);
        for step in ladder::steps(Timer::OfferTtl, 1) {
            match step {
                Step::ExpireOffer => {
                    if let Some(o) = self.offers.close(&id, OfferCloseReason::Expired) {
                        self.trace(format!("offer {id} to {} expired", o.rider_id), vec![]);
                        self.close_offers(vec![o], OfferCloseReason::Expired, ctx);
                    }
                }
                Step::OfferNextCandidate => self.try_dispatch(ctx),
                _ => {}
            }
        }
        self.persist_in_background(ctx);
    }

    /// A dispatcher's assignment: open offers close `withdrawn`, a previous rider is told.
    pub(super) fn assign_by_dispatcher(
        &mut self,
        rider_id: RiderId,
        ctx: &mut Context<Self>,
    ) -> Result<Transition, EngineError> {
        let t = self.change(
            OrderCommand::Assign {
                rider_id: rider_id.clone(),
            },
            ctx,
        )?;
        let closed = self.offers.close_all(OfferCloseReason::Withdrawn);
        self.close_offers(closed, OfferCloseReason::Withdrawn, ctx);
        self.trace(format!("assigned to {rider_id} by the dispatcher"), vec![]);
        Ok(t)
    }
}

impl Handler<Planned> for OrderActor {
    type Result = ();
    fn handle(&mut self, m: Planned, ctx: &mut Context<Self>) {
        self.planned = false;
        let ready = self.order.status == OrderStatus::Accepted
            && self.in_flight != Some(self.dispatch_gen)
            && self.policy.wants_more_offers(self.offers.open_count());
        if !ready {
            // Moved on meanwhile (assigned, an offer out): dispatch picks up from here. The
            // rider may be holding the bundle's other orders for this one: it drops them.
            if m.legs.len() > 1 {
                if let Some(rider) = self.shared.rider_ref(&m.rider_id) {
                    rider.tell(RiderMsg::Close {
                        offer_id: m.offer_id,
                        reason: OfferCloseReason::Withdrawn,
                    });
                }
            }
            return self.try_dispatch(ctx);
        }
        if self.offers.expired_riders().contains(&m.rider_id) {
            // The planner found nobody new: riders who let an offer expire get another.
            self.offers.forgive_expired();
            self.trace(
                "nobody new in range: riders who let an offer expire may be offered again".into(),
                vec![],
            );
        }
        let skipped = self.offers.skipped();
        self.trace_search(m.event, m.candidates, skipped);
        let chosen = Nearby {
            rider_id: m.rider_id,
            location: m.location,
            distance_m: m.distance_m,
            available: true,
            busy_until: None,
            shift_end_ms: None,
        };
        self.propose(vec![chosen], 0, Some((m.offer_id, m.legs)), ctx);
    }
}

impl Handler<LegClosed> for OrderActor {
    type Result = ();
    fn handle(&mut self, m: LegClosed, ctx: &mut Context<Self>) {
        let held = self
            .offers
            .get(&m.offer_id)
            .is_some_and(|o| o.rider_id == m.rider_id);
        if !held {
            return;
        }
        if m.reason == OfferCloseReason::Expired {
            return self.expire_offer(m.offer_id, ctx);
        }
        self.trace(
            format!(
                "offer {} withdrawn: another order of the bundle left it",
                m.offer_id
            ),
            vec![],
        );
        // No decline memory: the rider did not refuse this order. (The rider is told
        // again; it already closed the offer and ignores it.)
        if let Some(o) = self.offers.withdraw(&m.offer_id) {
            self.close_offers(vec![o], OfferCloseReason::Withdrawn, ctx);
        }
        self.try_dispatch(ctx);
        self.persist_in_background(ctx);
    }
}
