//! Bundles: orders of one merchant that one rider can carry on one route. Built greedily
//! per merchant before the assignment: from the earliest-ready order, add the order whose
//! drop-off grows the route least (cheapest insertion), while every order's projected
//! click-to-door stays within the allowed extra delay. A single order is a bundle of one.

use super::model::{PlanConfig, TravelModel, WaitingOrder};
use crate::domain::{GeoPoint, MerchantId};
use std::collections::BTreeMap;

/// Orders one rider would carry, in drop-off sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    pub merchant_id: MerchantId,
    pub pickup: GeoPoint,
    /// Indices into the round's orders, in drop-off sequence.
    pub orders: Vec<usize>,
    /// The latest ready time of its orders: the earliest the bundle can be picked up.
    pub ready_ms: u64,
}

impl Bundle {
    pub fn drops(&self, orders: &[WaitingOrder]) -> Vec<GeoPoint> {
        self.orders.iter().map(|&i| orders[i].dropoff).collect()
    }
}

/// Bundles of the orders at `eligible` (indices into `orders`), at most `size_limit`
/// orders each; every eligible order ends up in exactly one bundle. Deterministic: merchants
/// in id order, orders by ready time then id.
pub fn build_bundles(
    orders: &[WaitingOrder],
    eligible: &[usize],
    travel: &TravelModel,
    config: &PlanConfig,
    size_limit: usize,
) -> Vec<Bundle> {
    let mut by_merchant: BTreeMap<&MerchantId, Vec<usize>> = BTreeMap::new();
    for &i in eligible {
        by_merchant
            .entry(&orders[i].merchant_id)
            .or_default()
            .push(i);
    }
    let mut bundles = Vec::with_capacity(eligible.len());
    for (merchant_id, mut group) in by_merchant {
        group.sort_by(|&a, &b| {
            (orders[a].ready_at_ms, &orders[a].order_id)
                .cmp(&(orders[b].ready_at_ms, &orders[b].order_id))
        });
        let mut used = vec![false; group.len()];
        for seed in 0..group.len() {
            if used[seed] {
                continue;
            }
            used[seed] = true;
            let first = &orders[group[seed]];
            let mut bundle = Bundle {
                merchant_id: merchant_id.clone(),
                pickup: first.pickup,
                orders: vec![group[seed]],
                ready_ms: first.ready_at_ms,
            };
            while bundle.orders.len() < size_limit {
                match best_addition(orders, &group, &used, &bundle, travel, config) {
                    Some((slot, grown)) => {
                        used[slot] = true;
                        bundle = grown;
                    }
                    None => break,
                }
            }
            bundles.push(bundle);
        }
    }
    bundles
}

/// The unused order of the group whose cheapest insertion grows the route least and keeps
/// the bundle within limits: its slot in `group` and the grown bundle.
fn best_addition(
    orders: &[WaitingOrder],
    group: &[usize],
    used: &[bool],
    bundle: &Bundle,
    travel: &TravelModel,
    config: &PlanConfig,
) -> Option<(usize, Bundle)> {
    let drops = bundle.drops(orders);
    let earliest_ready = bundle
        .orders
        .iter()
        .map(|&i| orders[i].ready_at_ms)
        .min()
        .unwrap_or(bundle.ready_ms);
    let mut best: Option<(u64, usize, Bundle)> = None;
    for (slot, &candidate) in group.iter().enumerate() {
        let order = &orders[candidate];
        // The group is sorted by ready time, so the gap only grows from here.
        if order.ready_at_ms.saturating_sub(earliest_ready) > config.max_ready_gap_ms {
            break;
        }
        if used[slot] || !shares_a_candidate(orders, &bundle.orders, order) {
            continue;
        }
        let (position, added_ms) =
            travel.cheapest_insertion(&bundle.pickup, &drops, &order.dropoff);
        if best.as_ref().is_some_and(|(b, _, _)| added_ms >= *b) {
            continue;
        }
        let mut trial = bundle.clone();
        trial.orders.insert(position, candidate);
        trial.ready_ms = trial.ready_ms.max(order.ready_at_ms);
        if within_extra_delay(orders, &trial, travel, config.max_extra_delay_ms) {
            best = Some((added_ms, slot, trial));
        }
    }
    best.map(|(_, slot, bundle)| (slot, bundle))
}

/// True when some rider is a candidate of `order` and of every order already in the
/// bundle: a bundle goes only to a rider all its orders may have (one that declined any of
/// them is not a candidate), so orders with no rider in common are not worth bundling.
fn shares_a_candidate(orders: &[WaitingOrder], bundle: &[usize], order: &WaitingOrder) -> bool {
    order.candidate_riders.iter().any(|rider| {
        bundle
            .iter()
            .all(|&i| orders[i].candidate_riders.contains(rider))
    })
}

/// True when no order of `bundle` is handed over more than `max_extra_delay_ms` later
/// than it would be alone. Rider-independent: both projections assume a rider at the
/// merchant when the food is ready, so only the bundle's own effect is measured.
pub fn within_extra_delay(
    orders: &[WaitingOrder],
    bundle: &Bundle,
    travel: &TravelModel,
    max_extra_delay_ms: u64,
) -> bool {
    let at_merchant = |ready_ms: u64| ready_ms.saturating_sub(travel.pickup_service_ms / 2);
    let together = travel.project(
        at_merchant(bundle.ready_ms),
        &bundle.pickup,
        &bundle.pickup,
        bundle.ready_ms,
        &bundle.drops(orders),
    );
    bundle
        .orders
        .iter()
        .zip(&together.dropoff_ms)
        .all(|(&i, &door_ms)| {
            let o = &orders[i];
            let alone = travel.project(
                at_merchant(o.ready_at_ms),
                &bundle.pickup,
                &bundle.pickup,
                o.ready_at_ms,
                &[o.dropoff],
            );
            door_ms.saturating_sub(alone.dropoff_ms[0]) <= max_extra_delay_ms
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OrderId, RiderId};

    fn merchant_at() -> GeoPoint {
        GeoPoint::new(31.23, 121.47).unwrap()
    }

    fn order(
        id: &str,
        merchant: &str,
        bearing_deg: f64,
        distance_m: f64,
        ready_ms: u64,
    ) -> WaitingOrder {
        WaitingOrder {
            order_id: OrderId::parse(id).unwrap(),
            merchant_id: MerchantId::parse(merchant).unwrap(),
            pickup: merchant_at(),
            dropoff: merchant_at().destination(bearing_deg, distance_m),
            placed_ms: 0,
            ready_at_ms: ready_ms,
            due_ms: ready_ms,
            candidate_riders: vec![RiderId::parse("r_1").unwrap()],
        }
    }

    fn ids(orders: &[WaitingOrder], bundle: &Bundle) -> Vec<String> {
        bundle
            .orders
            .iter()
            .map(|&i| orders[i].order_id.to_string())
            .collect()
    }

    fn build(orders: &[WaitingOrder], limit: usize) -> Vec<Bundle> {
        let all: Vec<usize> = (0..orders.len()).collect();
        build_bundles(
            orders,
            &all,
            &TravelModel::default(),
            &PlanConfig::default(),
            limit,
        )
    }

    #[test]
    fn close_ready_times_and_nearby_drop_offs_make_one_bundle() {
        let orders = vec![
            order("o_a", "m_1", 90.0, 2000.0, 600_000),
            order("o_b", "m_1", 95.0, 2200.0, 660_000),
        ];
        let bundles = build(&orders, 2);
        assert_eq!(bundles.len(), 1);
        assert_eq!(ids(&orders, &bundles[0]), vec!["o_a", "o_b"]);
        assert_eq!(bundles[0].ready_ms, 660_000);
    }

    #[test]
    fn pairs_that_stay_apart() {
        // (why, the two orders, the bundle size limit)
        let cases = [
            (
                "drop-offs in opposite directions",
                [
                    order("o_a", "m_1", 90.0, 12_000.0, 600_000),
                    order("o_b", "m_1", 270.0, 12_000.0, 600_000),
                ],
                2,
            ),
            (
                "ready times far apart",
                [
                    order("o_a", "m_1", 90.0, 2000.0, 600_000),
                    order("o_b", "m_1", 90.0, 2100.0, 600_000 + 40 * 60_000),
                ],
                2,
            ),
            (
                "different merchants never share a bundle",
                [
                    order("o_a", "m_1", 90.0, 2000.0, 600_000),
                    order("o_b", "m_2", 90.0, 2000.0, 600_000),
                ],
                3,
            ),
            (
                "a size limit of one makes singles",
                [
                    order("o_a", "m_1", 90.0, 2000.0, 600_000),
                    order("o_b", "m_1", 90.0, 2100.0, 600_000),
                ],
                1,
            ),
        ];
        for (why, orders, limit) in cases {
            assert_eq!(build(&orders, limit).len(), 2, "{why}");
        }
    }

    #[test]
    fn orders_without_a_common_candidate_rider_stay_apart() {
        let mut orders = vec![
            order("o_a", "m_1", 90.0, 2000.0, 600_000),
            order("o_b", "m_1", 90.0, 2100.0, 600_000),
        ];
        orders[1].candidate_riders = vec![RiderId::parse("r_2").unwrap()];
        assert_eq!(build(&orders, 2).len(), 2);
        orders[1]
            .candidate_riders
            .push(RiderId::parse("r_1").unwrap());
        assert_eq!(build(&orders, 2).len(), 1);
    }

    #[test]
    fn cheapest_insertion_orders_the_drop_offs_along_the_way() {
        // Ready in the order far, near, middle; delivered near, middle, far.
        let orders = vec![
            order("o_far", "m_1", 90.0, 3000.0, 600_000),
            order("o_near", "m_1", 90.0, 1000.0, 610_000),
            order("o_mid", "m_1", 90.0, 2000.0, 620_000),
        ];
        let bundles = build(&orders, 3);
        assert_eq!(bundles.len(), 1);
        assert_eq!(ids(&orders, &bundles[0]), vec!["o_near", "o_mid", "o_far"]);
    }

    #[test]
    fn every_order_lands_in_exactly_one_bundle() {
        let orders: Vec<WaitingOrder> = (0..12)
            .map(|i| {
                order(
                    &format!("o_{i}"),
                    if i % 3 == 0 { "m_1" } else { "m_2" },
                    (i * 37 % 360) as f64,
                    500.0 + 300.0 * i as f64,
                    600_000 + 45_000 * i as u64,
                )
            })
            .collect();
        let bundles = build(&orders, 3);
        let mut seen: Vec<usize> = bundles.iter().flat_map(|b| b.orders.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..12).collect::<Vec<_>>());
        for b in &bundles {
            assert!(b.orders.len() <= 3);
            assert!(b
                .orders
                .iter()
                .all(|&i| orders[i].merchant_id == b.merchant_id));
            assert!(within_extra_delay(
                &orders,
                b,
                &TravelModel::default(),
                PlanConfig::default().max_extra_delay_ms
            ));
        }
    }
}
