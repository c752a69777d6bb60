//! The planner's book of orders waiting for a rider, and what a round makes of it: the
//! searches to run (one per order, near its merchant), the round's input built from their
//! results, and when the next order falls due. Plain data; the planner actor only ticks,
//! asks the matcher and sends.

use super::{FreeRider, PlanInput, PlannedRoute, WaitingOrder};
use crate::domain::offers::{CandidateTrace, OfferLeg};
use crate::domain::{GeoPoint, MerchantId, OrderId, RiderId};
use std::collections::{BTreeMap, HashSet};

/// One order as its actor registered it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanEntry {
    pub order_id: OrderId,
    pub merchant_id: MerchantId,
    pub pickup: GeoPoint,
    pub dropoff: GeoPoint,
    /// When the order's dispatch started (its place in the queue).
    pub placed_ms: u64,
    pub ready_at_ms: u64,
    /// How far from the merchant riders are looked for.
    pub radius_m: f64,
    /// Riders this order is never offered to (declined, holding an offer for it).
    pub exclude: HashSet<RiderId>,
    /// Riders who let an offer of this order expire: passed over while anyone else is in
    /// reach, as under `nearest` (docs/protocol.md, offer rules).
    pub expired: HashSet<RiderId>,
}

/// One rider found for one order, as the matcher saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub rider_id: RiderId,
    pub location: GeoPoint,
    pub distance_m: f64,
    /// A busy rider open to its next job: when and where it will be free.
    pub busy_until: Option<(u64, GeoPoint)>,
    /// When the rider's shift ends, if it said.
    pub shift_end_ms: Option<u64>,
}

#[derive(Default)]
pub struct PlanBook {
    /// Ordered by id so a round is deterministic (replays repeat exactly).
    entries: BTreeMap<OrderId, PlanEntry>,
    /// When each order must be offered by, from the last round (`ready_at_ms` minus the
    /// best candidate's travel time); `ready_at_ms` until a round has seen candidates.
    due_ms: BTreeMap<OrderId, u64>,
}

impl PlanBook {
    /// Adds an order, or replaces its entry (a wider radius, a new decliner).
    pub fn add(&mut self, e: PlanEntry) {
        self.due_ms
            .entry(e.order_id.clone())
            .or_insert(e.ready_at_ms);
        self.entries.insert(e.order_id.clone(), e);
    }

    pub fn remove(&mut self, id: &OrderId) -> Option<PlanEntry> {
        self.due_ms.remove(id);
        self.entries.remove(id)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, id: &OrderId) -> bool {
        self.entries.contains_key(id)
    }

    /// The searches a round runs, one per waiting order, in the book's order.
    pub fn searches(&self) -> Vec<&PlanEntry> {
        self.entries.values().collect()
    }

    /// The legs of an offer for `orders` (in drop-off sequence), as the rider sees them.
    pub fn legs(&self, orders: &[OrderId]) -> Vec<OfferLeg> {
        orders
            .iter()
            .filter_map(|id| self.entries.get(id))
            .map(|e| OfferLeg {
                order_id: e.order_id.clone(),
                dropoff: e.dropoff,
                ready_at_ms: Some(e.ready_at_ms),
            })
            .collect()
    }

    /// The earliest due time later than `now_ms`.
    pub fn next_due_after(&self, now_ms: u64) -> Option<u64> {
        self.due_ms.values().copied().filter(|&d| d > now_ms).min()
    }

    /// The round's input from the searches' results (`found[i]` for `searches()[i]`):
    /// an idle rider is free now where it stands, a busy one open to its next job where and
    /// when its work in hand ends. Also records each order's due time.
    pub fn input(&mut self, now_ms: u64, found: &[Vec<Found>], speed_mps: f64) -> PlanInput {
        let mut riders: BTreeMap<RiderId, (u64, GeoPoint, Option<u64>)> = BTreeMap::new();
        let mut orders = Vec::with_capacity(self.entries.len());
        for (e, cands) in self.entries.values().zip(found) {
            let cands = fresh_first(cands, &e.expired);
            let arrive_ms = |c: &Found| match c.busy_until {
                Some((free_ms, at)) => {
                    let travel = at.distance_m(&e.pickup) / speed_mps.max(0.1) * 1000.0;
                    free_ms.saturating_sub(now_ms) + travel as u64
                }
                None => (c.distance_m / speed_mps.max(0.1) * 1000.0) as u64,
            };
            let best_travel_ms = cands.iter().map(|c| arrive_ms(c)).min().unwrap_or(0);
            let due = e.ready_at_ms.saturating_sub(best_travel_ms);
            self.due_ms.insert(e.order_id.clone(), due);
            for c in &cands {
                let (free_ms, at) = c.busy_until.unwrap_or((now_ms, c.location));
                riders
                    .entry(c.rider_id.clone())
                    .or_insert((free_ms, at, c.shift_end_ms));
            }
            orders.push(WaitingOrder {
                order_id: e.order_id.clone(),
                merchant_id: e.merchant_id.clone(),
                pickup: e.pickup,
                dropoff: e.dropoff,
                placed_ms: e.placed_ms,
                ready_at_ms: e.ready_at_ms,
                due_ms: due,
                candidate_riders: cands.iter().map(|c| c.rider_id.clone()).collect(),
            });
        }
        PlanInput {
            now_ms,
            orders,
            riders: riders
                .into_iter()
                .map(|(rider_id, (free_at_ms, at, shift_end_ms))| FreeRider {
                    rider_id,
                    free_at_ms: free_at_ms.max(now_ms),
                    free_at: at,
                    shift_end_ms,
                })
                .collect(),
        }
    }
}

/// The trace of one planned order: every rider the round priced for it, with its distance,
/// travel time and price, the chosen one marked `planned`.
pub fn priced_candidates(
    route: &PlannedRoute,
    found: &[Found],
    speed_mps: f64,
) -> Vec<CandidateTrace> {
    route
        .trace
        .candidates
        .iter()
        .map(|c| {
            let distance_m = found
                .iter()
                .find(|f| f.rider_id == c.rider_id)
                .map_or(0.0, |f| f.distance_m);
            CandidateTrace {
                rider_id: c.rider_id.clone(),
                distance_m: distance_m.round(),
                travel_s: (distance_m / speed_mps.max(0.1)).round(),
                decision: if c.rider_id == route.rider_id {
                    "planned".into()
                } else {
                    "candidate".into()
                },
                cost_s: Some((c.cost.total as f64 / 1000.0).round()),
            }
        })
        .collect()
}

/// The candidates of one order without the riders who let its offer expire, unless
/// nobody else was found: then they may be offered it again.
fn fresh_first<'a>(found: &'a [Found], expired: &HashSet<RiderId>) -> Vec<&'a Found> {
    let fresh: Vec<&Found> = found
        .iter()
        .filter(|c| !expired.contains(&c.rider_id))
        .collect();
    if fresh.is_empty() {
        found.iter().collect()
    } else {
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u32, ready_at_ms: u64) -> PlanEntry {
        let at = GeoPoint::new(31.23, 121.47).unwrap();
        PlanEntry {
            order_id: OrderId::parse(&format!("o_{n}")).unwrap(),
            merchant_id: MerchantId::parse("m_1").unwrap(),
            pickup: at,
            dropoff: at.destination(90.0, 2000.0),
            placed_ms: 0,
            ready_at_ms,
            radius_m: 3000.0,
            exclude: HashSet::new(),
            expired: HashSet::new(),
        }
    }

    fn found(rider: &str, distance_m: f64) -> Found {
        Found {
            rider_id: RiderId::parse(rider).unwrap(),
            location: GeoPoint::new(31.23, 121.47)
                .unwrap()
                .destination(0.0, distance_m),
            distance_m,
            busy_until: None,
            shift_end_ms: None,
        }
    }

    #[test]
    fn riders_who_let_the_offer_expire_are_passed_over_unless_nobody_else_is_found() {
        let mut book = PlanBook::default();
        let mut e = entry(1, 10_000);
        e.expired.insert(RiderId::parse("r_1").unwrap());
        book.add(e);
        let with_other = book.input(0, &[vec![found("r_1", 100.0), found("r_2", 900.0)]], 5.0);
        assert_eq!(
            with_other.orders[0].candidate_riders,
            vec![RiderId::parse("r_2").unwrap()]
        );
        assert_eq!(with_other.riders.len(), 1);
        let alone = book.input(0, &[vec![found("r_1", 100.0)]], 5.0);
        assert_eq!(
            alone.orders[0].candidate_riders,
            vec![RiderId::parse("r_1").unwrap()]
        );
    }

    #[test]
    fn an_order_falls_due_when_its_nearest_rider_must_leave_for_the_food() {
        let mut b = PlanBook::default();
        b.add(entry(1, 600_000));
        b.add(entry(2, 900_000));
        assert_eq!(
            b.next_due_after(0),
            Some(600_000),
            "ready time until a round saw riders"
        );
        let found = vec![
            vec![found("r_a", 1000.0), found("r_b", 500.0)],
            vec![found("r_a", 1000.0)],
        ];
        let input = b.input(10_000, &found, 5.0);
        // 500 m at 5 m/s is 100 s; 1,000 m is 200 s.
        assert_eq!(input.orders[0].due_ms, 500_000);
        assert_eq!(input.orders[1].due_ms, 700_000);
        assert_eq!(b.next_due_after(0), Some(500_000));
        let riders: Vec<&str> = input.riders.iter().map(|r| r.rider_id.as_str()).collect();
        assert_eq!(riders, vec!["r_a", "r_b"], "each rider once");
        assert!(input.riders.iter().all(|r| r.free_at_ms == 10_000));
        assert_eq!(input.orders[1].candidate_riders.len(), 1);
        b.remove(&OrderId::parse("o_1").unwrap());
        assert_eq!((b.len(), b.next_due_after(0)), (1, Some(700_000)));
        assert_eq!(b.next_due_after(700_000), None);
        assert_eq!(b.next_due_after(699_999), Some(700_000));
    }

    #[test]
    fn a_planned_orders_trace_prices_every_candidate_and_marks_the_chosen_one() {
        use crate::plan::{CandidateCost, CostTerms, DecisionTrace};
        let cost = |total| CostTerms {
            click_to_door_ms: total,
            food_wait_ms: 0,
            rider_wait_ms: 0,
            total,
        };
        let rider = |id: &str| RiderId::parse(id).unwrap();
        let route = PlannedRoute {
            rider_id: rider("r_b"),
            merchant_id: MerchantId::parse("m_1").unwrap(),
            orders: vec![OrderId::parse("o_1").unwrap()],
            arrive_ms: 0,
            pickup_ms: 0,
            dropoff_ms: vec![0],
            cost: cost(1_200_400),
            trace: DecisionTrace {
                candidates: vec![
                    CandidateCost {
                        rider_id: rider("r_b"),
                        cost: cost(1_200_400),
                    },
                    CandidateCost {
                        rider_id: rider("r_a"),
                        cost: cost(1_500_000),
                    },
                ],
                wait: None,
            },
        };
        let t = priced_candidates(&route, &[found("r_a", 1000.0), found("r_b", 500.0)], 5.0);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].decision.as_str(), t[0].distance_m, t[0].travel_s),
            ("planned", 500.0, 100.0)
        );
        assert_eq!(t[0].cost_s, Some(1200.0));
        assert_eq!(
            (t[1].decision.as_str(), t[1].cost_s),
            ("candidate", Some(1500.0))
        );
    }
}
