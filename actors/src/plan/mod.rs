//! The dispatch planner's planning step: one round of rolling-horizon batch matching.
//! Inputs in, plan out; no actors, no I/O, no clock (docs: DESIGN "The dispatch planner").
//!
//! A round:
//! 1. takes the waiting orders whose food is ready within the horizon (and every order
//!    already due);
//! 2. bundles them per merchant ([`bundle`]), sized by supply;
//! 3. prices each bundle with each of its candidate riders (projected click-to-door plus
//!    weighted food and rider waits, [`cost`]) and prices "no rider this round";
//! 4. solves one rectangular assignment ([`assign`], Hungarian on integer costs, split into
//!    independent neighbourhoods);
//! 5. returns each chosen (rider, bundle) with its projected times and the costs it was
//!    chosen on, and the orders left waiting with the reason.

pub mod assign;
pub mod book;
pub mod bundle;
pub mod cost;
pub mod model;
pub mod route;
pub mod schedule;

#[cfg(test)]
mod tests;

pub use model::*;

use crate::domain::RiderId;
use bundle::Bundle;
use cost::Costed;
use std::collections::HashMap;

/// Plans one round. Deterministic for a given input.
pub fn solve(input: &PlanInput, travel: &TravelModel, config: &PlanConfig) -> Plan {
    let now_ms = input.now_ms;
    let orders = &input.orders;
    let horizon_end_ms = now_ms.saturating_add(config.ready_horizon_ms);
    let (eligible, not_ready): (Vec<usize>, Vec<usize>) = (0..orders.len())
        .partition(|&i| orders[i].ready_at_ms <= horizon_end_ms || orders[i].due_ms <= now_ms);

    let mut rider_index: HashMap<&RiderId, usize> = HashMap::with_capacity(input.riders.len());
    for (i, rider) in input.riders.iter().enumerate() {
        rider_index.entry(&rider.rider_id).or_insert(i);
    }

    let size_limit = if config.bundle_by_supply {
        eligible.len().div_ceil(rider_index.len().max(1))
    } else {
        config.max_orders_per_bundle
    }
    .clamp(1, config.max_orders_per_bundle.max(1));
    let bundles = bundle::build_bundles(orders, &eligible, travel, config, size_limit);

    // Price every (bundle, candidate rider) pair now and a round later (for the bundle's
    // wait), from one projection each.
    let mut priced: Vec<Vec<(usize, Costed)>> = Vec::with_capacity(bundles.len());
    let mut waits = Vec::with_capacity(bundles.len());
    for b in &bundles {
        let mut pairs = Vec::new();
        let mut later_best: Option<i64> = None;
        for r in candidates_of(b, orders, &rider_index) {
            let (now, later) =
                cost::price_now_and_later(b, orders, &input.riders[r], now_ms, travel, config);
            later_best = Some(later_best.map_or(later, |best| best.min(later)));
            if let Some(c) = now {
                pairs.push((r, c));
            }
        }
        waits.push(cost::wait_cost_from(b, orders, later_best, now_ms, config));
        priced.push(pairs);
    }

    let problem = assign::Problem {
        columns: input.riders.len(),
        edges: priced
            .iter()
            .map(|pairs| pairs.iter().map(|(r, c)| (*r, c.terms.total)).collect())
            .collect(),
        wait: waits
            .iter()
            .map(|w| assign::Wait {
                cost: w.total,
                forced: w.forced,
            })
            .collect(),
    };
    let chosen = assign::solve(&problem);

    let mut plan = Plan::default();
    for (k, b) in bundles.iter().enumerate() {
        let trace = DecisionTrace {
            candidates: priced[k]
                .iter()
                .map(|(r, c)| CandidateCost {
                    rider_id: input.riders[*r].rider_id.clone(),
                    cost: c.terms,
                })
                .collect(),
            wait: Some(waits[k]),
        };
        let order_ids = b
            .orders
            .iter()
            .map(|&i| orders[i].order_id.clone())
            .collect();
        match chosen[k] {
            Some(r) => {
                let (_, costed) = priced[k]
                    .iter()
                    .find(|(rider, _)| *rider == r)
                    .expect("the solver assigns only priced pairs");
                plan.routes.push(PlannedRoute {
                    rider_id: input.riders[r].rider_id.clone(),
                    merchant_id: b.merchant_id.clone(),
                    orders: order_ids,
                    arrive_ms: costed.projection.arrive_ms,
                    pickup_ms: costed.projection.pickup_ms,
                    dropoff_ms: costed.projection.dropoff_ms.clone(),
                    cost: costed.terms,
                    trace,
                });
            }
            None => plan.waiting.push(LeftWaiting {
                orders: order_ids,
                reason: why_waiting(&trace, &waits[k]),
                trace,
            }),
        }
    }
    for i in not_ready {
        plan.waiting.push(LeftWaiting {
            orders: vec![orders[i].order_id.clone()],
            reason: WaitReason::NotReadySoon,
            trace: DecisionTrace {
                candidates: Vec::new(),
                wait: None,
            },
        });
    }
    plan
}

/// Riders every order of the bundle names as a candidate (a rider that declined one of them
/// is not offered the bundle) and the round knows, in input order.
fn candidates_of(
    bundle: &Bundle,
    orders: &[WaitingOrder],
    rider_index: &HashMap<&RiderId, usize>,
) -> Vec<usize> {
    let (&first, rest) = bundle
        .orders
        .split_first()
        .expect("a bundle holds at least one order");
    let mut riders: Vec<usize> = orders[first]
        .candidate_riders
        .iter()
        .filter(|id| {
            rest.iter()
                .all(|&i| orders[i].candidate_riders.contains(id))
        })
        .filter_map(|id| rider_index.get(id).copied())
        .collect();
    riders.sort_unstable();
    riders.dedup();
    riders
}

fn why_waiting(trace: &DecisionTrace, wait: &WaitCost) -> WaitReason {
    match trace.candidates.iter().map(|c| c.cost.total).min() {
        None => WaitReason::NoCandidate,
        Some(best) if !wait.forced && wait.total <= best => WaitReason::Deferred,
        Some(_) => WaitReason::RidersTaken,
    }
}
