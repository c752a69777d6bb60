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
    let projection = project(bundle, orders, rider, start_floor_ms, travel);
    within_shift(rider, &projection).then(|| price(bundle, orders, projection, travel, config))
}

/// The rider's route for the bundle, starting at the later of its free time and
/// `start_floor_ms`; shifts are not checked.
pub fn project(
    bundle: &Bundle,
    orders: &[WaitingOrder],
    rider: &FreeRider,
    start_floor_ms: u64,
    travel: &TravelModel,
) -> RouteProjection {
    travel.project(
        rider.free_at_ms.max(start_floor_ms),
        &rider.free_at,
        &bundle.pickup,
        bundle.ready_ms,
        &bundle.drops(orders),
    )
}

/// Does the pickup fall within the rider's shift?
pub fn within_shift(rider: &FreeRider, projection: &RouteProjection) -> bool {
    rider
        .shift_end_ms
        .is_none_or(|end_ms| projection.pickup_ms <= end_ms)
}

/// The cost of a projected route.
pub fn price(
    bundle: &Bundle,
    orders: &[WaitingOrder],
    projection: RouteProjection,
    travel: &TravelModel,
    config: &PlanConfig,
) -> Costed {
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
    Costed {
        projection,
        terms: CostTerms {
            click_to_door_ms,
            food_wait_ms,
            rider_wait_ms,
            total,
        },
    }
}

/// Prices one (bundle, rider) pair now and one round later from a single projection: the
/// cost of taking it this round (`None` past the rider's shift) and the best it could do
/// next round (shifts not checked: an estimate), which feeds [`wait_cost_from`].
pub fn price_now_and_later(
    bundle: &Bundle,
    orders: &[WaitingOrder],
    rider: &FreeRider,
    now_ms: u64,
    travel: &TravelModel,
    config: &PlanConfig,
) -> (Option<Costed>, i64) {
    let now = project(bundle, orders, rider, now_ms, travel);
    let later_start_ms = rider.free_at_ms.max(now_ms.saturating_add(config.round_ms));
    let later = travel.delay(
        &now,
        later_start_ms - rider.free_at_ms.max(now_ms),
        bundle.ready_ms,
    );
    let later_total = price(bundle, orders, later, travel, config).terms.total;
    let now_cost = within_shift(rider, &now).then(|| price(bundle, orders, now, travel, config));
    (now_cost, later_total)
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
    let later_best = candidates
        .into_iter()
        .map(|r| {
            let p = project(bundle, orders, r, next_round_ms, travel);
            price(bundle, orders, p, travel, config).terms.total
        })
        .min();
    wait_cost_from(bundle, orders, later_best, now_ms, config)
}

/// [`wait_cost`] from the best later price already known.
pub fn wait_cost_from(
    bundle: &Bundle,
    orders: &[WaitingOrder],
    later_best: Option<i64>,
    now_ms: u64,
    config: &PlanConfig,
) -> WaitCost {
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
