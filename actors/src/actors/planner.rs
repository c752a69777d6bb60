//! The dispatch planner (`dispatch.policy = "batch"`): order actors waiting for a rider
//! register here; every `dispatch.round_s`, and early when an order is about to fall due,
//! one round asks the matcher for each order's candidates at once, solves one assignment
//! (`crate::plan`) and tells each chosen order which rider to offer. Offers, expiry, one
//! winner and decline memory stay in the OrderActor: the planner proposes, the order
//! decides. The planning itself is plain code (`crate::plan`); this actor gathers, ticks
//! and sends.

use super::matcher::{CandidateQuery, FindCandidatesBatch, MatcherActor};
use crate::clock::Clock;
use crate::config::{secs, DispatchConfig};
use crate::domain::{OfferId, OrderId};
use crate::metric_names;
use crate::plan::book::{priced_candidates, Found, PlanBook, PlanEntry};
use crate::plan::schedule::RoundSchedule;
use crate::plan::{self, PlanConfig, TravelModel};
use crate::protocol::Planned;
use actix::prelude::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub struct PlannerActor {
    book: PlanBook,
    replies: HashMap<OrderId, Recipient<Planned>>,
    /// When each order (re)joined the book: an order due before it came cannot be offered
    /// before it came, so its offer delay counts from then.
    joined_ms: HashMap<OrderId, u64>,
    matcher: Addr<MatcherActor>,
    clock: Clock,
    cfg: DispatchConfig,
    plan_cfg: PlanConfig,
    travel: TravelModel,
    schedule: RoundSchedule,
    /// The timer of an early round (see `RoundSchedule::early_at`).
    early: Option<SpawnHandle>,
}

impl PlannerActor {
    pub fn new(matcher: Addr<MatcherActor>, clock: Clock, cfg: DispatchConfig) -> Self {
        let plan_cfg = PlanConfig {
            round_ms: (cfg.round_s * 1000.0) as u64,
            max_orders_per_bundle: cfg.max_bundle.max(1),
            ..PlanConfig::default()
        };
        let schedule =
            RoundSchedule::with_min_gap_ms((cfg.min_round_gap_s.max(0.0) * 1000.0) as u64);
        Self {
            book: PlanBook::default(),
            replies: HashMap::new(),
            joined_ms: HashMap::new(),
            matcher,
            clock,
            travel: TravelModel::with_speed(cfg.speed_mps),
            cfg,
            plan_cfg,
            schedule,
            early: None,
        }
    }

    fn round(&mut self, ctx: &mut Context<Self>) {
        if self.book.is_empty() || !self.schedule.start(self.clock.now_ms()) {
            return;
        }
        let started = Instant::now();
        let searches = self.book.searches();
        let ids: Vec<OrderId> = searches.iter().map(|e| e.order_id.clone()).collect();
        let queries = searches
            .into_iter()
            .map(|e| CandidateQuery {
                at: e.pickup,
                k: self.cfg.candidates_k.max(1),
                // Every candidate within reach is priced: the nearest rider is not always
                // the best, and a round never leaves an order unseen for want of widening.
                radius_m: e.radius_m.max(self.cfg.max_radius_m),
                exclude: e.exclude.clone(),
            })
            .collect();
        ctx.spawn(
            self.matcher
                .send(FindCandidatesBatch(queries))
                .into_actor(self)
                .map(move |res, act, ctx| {
                    let again = act.schedule.finish();
                    if let Ok(found) = res {
                        act.solve(ids, found);
                    }
                    metrics::histogram!(metric_names::PLAN_ROUND_SECONDS)
                        .record(started.elapsed().as_secs_f64());
                    if again {
                        act.round(ctx);
                    }
                    act.schedule_due(ctx);
                }),
        );
    }

    /// Plans with what the matcher found and tells each chosen order its rider.
    fn solve(&mut self, ids: Vec<OrderId>, found: Vec<Vec<crate::matcher::Nearby>>) {
        // Orders may have come or gone while the matcher answered: line results up by id.
        let mut by_id: HashMap<OrderId, Vec<Found>> = ids
            .into_iter()
            .zip(found)
            .map(|(id, near)| {
                let near = near
                    .into_iter()
                    .map(|n| Found {
                        rider_id: n.rider_id,
                        location: n.location,
                        distance_m: n.distance_m,
                        busy_until: n.busy_until,
                        shift_end_ms: n.shift_end_ms,
                    })
                    .collect();
                (id, near)
            })
            .collect();
        let aligned: Vec<Vec<Found>> = self
            .book
            .searches()
            .iter()
            .map(|e| by_id.remove(&e.order_id).unwrap_or_default())
            .collect();
        let now = self.clock.now_ms();
        let mut input = self.book.input(now, &aligned, self.cfg.speed_mps);
        if !self.cfg.late_commitment {
            // Every order counts as due: it takes a rider at the first round that has one.
            for o in &mut input.orders {
                o.due_ms = o.due_ms.min(now);
            }
        }
        let found_of: HashMap<&OrderId, &Vec<Found>> = input
            .orders
            .iter()
            .map(|o| &o.order_id)
            .zip(aligned.iter())
            .collect();
        let result = plan::solve(&input, &self.travel, &self.plan_cfg);
        let event = format!(
            "planning round: {} orders waiting, {} riders free, {} offered this round",
            input.orders.len(),
            input.riders.len(),
            result.routes.len()
        );
        let due_of: HashMap<&OrderId, u64> = input
            .orders
            .iter()
            .map(|o| (&o.order_id, o.due_ms))
            .collect();
        let delay = metrics::histogram!(metric_names::PLAN_OFFER_DELAY_SECONDS);
        let mut sends = Vec::new();
        for route in &result.routes {
            let legs = self.book.legs(&route.orders);
            let offer_id = OfferId::generate();
            for order_id in &route.orders {
                let Some(cands) = found_of.get(order_id) else {
                    continue;
                };
                let Some(chosen) = cands.iter().find(|c| c.rider_id == route.rider_id) else {
                    continue;
                };
                let (location, distance_m) = (chosen.location, chosen.distance_m);
                let candidates = priced_candidates(route, cands, self.cfg.speed_mps);
                if let Some(&due_ms) = due_of.get(order_id) {
                    let joined_ms = self.joined_ms.get(order_id).copied().unwrap_or(0);
                    delay.record(now.saturating_sub(due_ms.max(joined_ms)) as f64 / 1000.0);
                }
                sends.push((
                    order_id.clone(),
                    Planned {
                        rider_id: route.rider_id.clone(),
                        location,
                        distance_m,
                        event: event.clone(),
                        candidates,
                        offer_id: offer_id.clone(),
                        legs: legs.clone(),
                    },
                ));
            }
        }
        for (order_id, msg) in sends {
            self.book.remove(&order_id);
            self.joined_ms.remove(&order_id);
            if let Some(reply) = self.replies.remove(&order_id) {
                reply.do_send(msg);
            }
        }
    }

    /// Runs a round at `at_ms` if that is before the next regular one.
    fn round_at(&mut self, at_ms: u64, ctx: &mut Context<Self>) {
        let Some(at_ms) = self.schedule.early_at(at_ms) else {
            return;
        };
        if let Some(h) = self.early.take() {
            ctx.cancel_future(h);
        }
        let delay = Duration::from_millis(at_ms.saturating_sub(self.clock.now_ms()));
        self.early = Some(ctx.run_later(delay, |act, ctx| {
            act.early = None;
            act.schedule.early_fired();
            act.round(ctx);
        }));
    }

    /// After a round: the next order to fall due gets a round of its own. Orders already
    /// due were just planned; those left (nobody in reach) wait for the regular round.
    fn schedule_due(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now_ms();
        if let Some(due) = self.book.next_due_after(now) {
            self.round_at(due, ctx);
        }
    }
}

impl Actor for PlannerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = secs(self.cfg.round_s.max(0.001));
        let every_ms = every.as_millis() as u64;
        self.schedule.regular_at(self.clock.now_ms() + every_ms);
        ctx.run_interval(every, move |act, ctx| {
            act.schedule.regular_at(act.clock.now_ms() + every_ms);
            act.round(ctx);
        });
    }
}

/// An order waits for the planner's next round (replacing an earlier registration).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PlanOrder {
    pub entry: PlanEntry,
    pub reply: Recipient<Planned>,
}

/// The order no longer waits (assigned, cancelled, its actor stopped).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unplan(pub OrderId);

impl Handler<PlanOrder> for PlannerActor {
    type Result = ();
    fn handle(&mut self, m: PlanOrder, ctx: &mut Context<Self>) {
        // With `first_look`, a new order is seen by the next round that may run
        // (`min_round_gap_s` after the last): its due time depends on the riders near it,
        // which only a round finds, and waiting for the regular round can leave it unseen
        // past its due time when its food is ready soon. Off by default: on the MDRP sweep
        // it cost 0.04 points of undelivered orders and 0.2 min of click-to-door
        // (docs/performance.md, "Batch offers against their due time"). An order coming
        // back (an offer declined or expired) always waits for its food's ready time or
        // the regular round, so a rider who let an offer go is not asked again at once.
        let now = self.clock.now_ms();
        let first_time = m.entry.exclude.is_empty() && m.entry.expired.is_empty();
        let at = if first_time && self.cfg.first_look {
            now
        } else {
            m.entry.ready_at_ms.max(now)
        };
        self.joined_ms.insert(m.entry.order_id.clone(), now);
        self.replies.insert(m.entry.order_id.clone(), m.reply);
        self.book.add(m.entry);
        self.round_at(at, ctx);
    }
}

impl Handler<Unplan> for PlannerActor {
    type Result = ();
    fn handle(&mut self, m: Unplan, _: &mut Context<Self>) {
        self.book.remove(&m.0);
        self.replies.remove(&m.0);
        self.joined_ms.remove(&m.0);
    }
}
