//! What giving a bundle to a rider costs, and what leaving it for a later round costs.

use super::bundle::Bundle;
use super::model::{CostTerms, FreeRider, PlanConfig, TravelModel, WaitCost, WaitingOrder};
use super::route::RouteProjection;

/// A rider's route for a bundle with its cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Costed {
    pub projection: RouteProjection,
    pub terms: CostTerms,
}

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn weighted(weight: f64, value_ms: i64) -> i64 {
    (weight * value_ms as f64).round() as i64
}

/// The rider starts toward the merchant at the later of its free time and `start_floor_ms`
/// (now, or the next round for the wait estimate). `None` when the pickup would fall after
/// the rider's shift.
pub fn route_cost(
    bundle: &Bundle,
    orders: &[WaitingOrder],
    rider: &FreeRider,
    start_floor_ms: u64,
    travel: &TravelModel,
    config: &PlanConfig,
) -> Option<Costed> {
    let start_ms = rider.free_at_ms.max(start_floor_ms);
    let projection = travel.project(
        start_ms,
        &rider.free_at,
        &bundle.pickup,
        bundle.ready_ms,
        &bundle.drops(orders),
    );
    if rider
        .shift_end_ms
        .is_some_and(|end_ms| projection.pickup_ms > end_ms)
    {
        return None;
    }
    let mut click_to_door_ms = 0i64;
    let mut food_wait_ms = 0i64;
    for (&i, &door_ms) in bundle.orders.iter().zip(&projection.dropoff_ms) {
        let order = &orders[i];
        // Saturating: a nonsense speed (zero) projects "never", and must not overflow.
        click_to_door_ms = click_to_door_ms.saturating_add(ms(door_ms) - ms(order.placed_ms));
        food_wait_ms =
            food_wait_ms.saturating_add(ms(projection.pickup_ms.saturating_sub(order.ready_at_ms)));
    }
    let ready_for_pickup_ms = projection
        .arrive_ms
        .saturating_add(travel.pickup_service_ms / 2);
    let rider_wait_ms = ms(bundle.ready_ms.saturating_sub(ready_for_pickup_ms));
    let total = click_to_door_ms
        .saturating_add(weighted(config.food_wait_weight, food_wait_ms))
        .saturating_add(weighted(config.rider_wait_weight, rider_wait_ms));
    Some(Costed {
        projection,
        terms: CostTerms {
            click_to_door_ms,
            food_wait_ms,
            rider_wait_ms,
            total,
        },
    })
}

/// The price of "no rider this round": the best any candidate could do one round later
/// (shift ends are not checked for it: an estimate only), plus the urgency of food already
/// waiting, minus the option value of staying open. Forced when an order is due.
/// `None` when no candidate exists at all.
pub fn wait_cost<'a>(
    bundle: &Bundle,
    orders: &[WaitingOrder],
    candidates: impl IntoIterator<Item = &'a FreeRider>,
    now_ms: u64,
    travel: &TravelModel,
    config: &PlanConfig,
) -> WaitCost {
    let next_round_ms = now_ms.saturating_add(config.round_ms);
    let unlimited = |r: &FreeRider| FreeRider {
        shift_end_ms: None,
        ..r.clone()
    };
    let later_best = candidates
        .into_iter()
        .filter_map(|r| route_cost(bundle, orders, &unlimited(r), next_round_ms, travel, config))
        .map(|c| c.terms.total)
        .min();
    let mut waited = 0i64;
    let mut forced = false;
    for &i in &bundle.orders {
        let order = &orders[i];
        waited += weighted(
            config.waited_weight,
            ms(now_ms.saturating_sub(order.ready_at_ms)),
        );
        // Past due, the order that is most overdue is the most urgent.
        if order.due_ms <= now_ms {
            forced = true;
            waited += ms(now_ms - order.due_ms);
        }
    }
    let keep_open = config
        .keep_open_ms
        .saturating_mul(i64::try_from(bundle.orders.len()).unwrap_or(i64::MAX));
    let total = later_best
        .unwrap_or(0)
        .saturating_add(waited)
        .saturating_sub(keep_open);
    WaitCost {
        later_best,
        waited,
        keep_open,
        forced,
        total,
    }
}
