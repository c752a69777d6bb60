//! Orders waiting for a rider (their widest search found nobody), and the rule that serves
//! them oldest first: a rider who comes free is owed to the longest-waiting order that
//! could take it, so a younger order's search passes over that rider. The orders' pickups
//! sit in an R-tree (Earth-centred metres, as the rider index), so "is this rider owed to
//! an older order?" looks only at orders within reach of the rider, not at every order
//! waiting: a busy day's backlog does not slow each search down.

use crate::domain::geo::chord_for_arc_m;
use crate::domain::{GeoPoint, OrderId, RiderId};
use rstar::primitives::GeomWithData;
use rstar::RTree;
use std::collections::{BTreeMap, HashMap, HashSet};

type Pin = GeomWithData<[f64; 3], OrderId>;

/// An order that found nobody at its widest search: it waits for a rider to come free.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    /// When the order's dispatch started: the queue is first come, first served.
    pub since_ms: u64,
    pub at: GeoPoint,
    pub radius_m: f64,
    /// Riders this order will not be offered (declined, expired).
    pub exclude: HashSet<RiderId>,
}

#[derive(Default)]
pub struct WaitingOrders {
    orders: HashMap<OrderId, Waiting>,
    pickups: RTree<Pin>,
    /// Search radii of the waiting orders (whole metres, rounded up) with how many orders
    /// have each: the largest bounds how far from a rider an order can reach it.
    radii: BTreeMap<u64, usize>,
}

fn radius_key(radius_m: f64) -> u64 {
    radius_m.max(0.0).ceil() as u64
}

impl WaitingOrders {
    pub fn wait(&mut self, id: OrderId, w: Waiting) {
        // A waiting order asks again on every retry; most often nothing changed.
        if self.orders.get(&id) == Some(&w) {
            return;
        }
        self.done(&id);
        self.pickups.insert(Pin::new(w.at.to_ecef_m(), id.clone()));
        *self.radii.entry(radius_key(w.radius_m)).or_default() += 1;
        self.orders.insert(id, w);
    }

    pub fn done(&mut self, id: &OrderId) {
        let Some(w) = self.orders.remove(id) else {
            return;
        };
        self.pickups.remove(&Pin::new(w.at.to_ecef_m(), id.clone()));
        let key = radius_key(w.radius_m);
        if let Some(n) = self.radii.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.radii.remove(&key);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// Is `rider` (at `point`) owed to an order that has waited longer than `asking`,
    /// whose dispatch started at `since_ms`? Ties go to the smaller order id.
    pub fn owed_to_older(
        &self,
        rider: &RiderId,
        point: &GeoPoint,
        asking: &OrderId,
        since_ms: u64,
    ) -> bool {
        let Some((&reach_m, _)) = self.radii.last_key_value() else {
            return false;
        };
        let chord_m = chord_for_arc_m(reach_m as f64);
        self.pickups
            .locate_within_distance(point.to_ecef_m(), chord_m * chord_m)
            .any(|pin| {
                let id = &pin.data;
                let Some(w) = self.orders.get(id) else {
                    return false;
                };
                id != asking
                    && (w.since_ms, id) < (since_ms, asking)
                    && !w.exclude.contains(rider)
                    && w.at.distance_m(point) <= w.radius_m
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn rid(i: usize) -> RiderId {
        RiderId::parse(&format!("r_{i}")).unwrap()
    }

    #[test]
    fn a_free_rider_is_owed_to_the_longest_waiting_order_in_reach() {
        let at = GeoPoint::new(10.0, 10.0).unwrap();
        let rider = rid(1);
        let mut w = WaitingOrders::default();
        let old = OrderId::parse("o_old").unwrap();
        let young = OrderId::parse("o_young").unwrap();
        let wait = |since_ms, radius_m| Waiting {
            since_ms,
            at,
            radius_m,
            exclude: HashSet::new(),
        };
        w.wait(old.clone(), wait(1_000, 5_000.0));
        let near = at.destination(0.0, 1_000.0);
        assert!(w.owed_to_older(&rider, &near, &young, 2_000));
        assert!(
            !w.owed_to_older(&rider, &near, &old, 1_000),
            "not owed to itself"
        );
        let far = at.destination(0.0, 9_000.0);
        assert!(
            !w.owed_to_older(&rider, &far, &young, 2_000),
            "out of the old order's reach"
        );
        assert!(
            !w.owed_to_older(&rider, &near, &young, 500),
            "the asker waited longer"
        );
        let mut declined = wait(1_000, 5_000.0);
        declined.exclude.insert(rider.clone());
        w.wait(old.clone(), declined);
        assert!(
            !w.owed_to_older(&rider, &near, &young, 2_000),
            "the old order declined-memory"
        );
        w.done(&old);
        assert!(w.is_empty());
    }

    /// The R-tree answers exactly what a scan of every waiting order answers.
    #[test]
    fn agrees_with_a_scan_of_every_waiting_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let centre = GeoPoint::new(41.88, -87.63).unwrap();
        let mut w = WaitingOrders::default();
        let mut all: HashMap<OrderId, Waiting> = HashMap::new();
        for step in 0..3000 {
            let id = OrderId::parse(&format!("o_{}", rng.gen_range(0..300))).unwrap();
            if rng.gen_bool(0.3) {
                w.done(&id);
                all.remove(&id);
            } else {
                let mut exclude = HashSet::new();
                if rng.gen_bool(0.2) {
                    exclude.insert(rid(rng.gen_range(0..20)));
                }
                let wt = Waiting {
                    since_ms: rng.gen_range(0..1000),
                    at: centre.destination(rng.gen_range(0.0..360.0), rng.gen_range(0.0..15_000.0)),
                    radius_m: [3_000.0, 6_000.0, 12_000.0][rng.gen_range(0..3)],
                    exclude,
                };
                w.wait(id.clone(), wt.clone());
                all.insert(id, wt);
            }
            if step % 10 == 0 {
                let rider = rid(rng.gen_range(0..20));
                let p = centre.destination(rng.gen_range(0.0..360.0), rng.gen_range(0.0..20_000.0));
                let asking = OrderId::parse(&format!("o_{}", rng.gen_range(0..300))).unwrap();
                let since = rng.gen_range(0..1000);
                let scan = all.iter().any(|(id, o)| {
                    id != &asking
                        && (o.since_ms, id) < (since, &asking)
                        && !o.exclude.contains(&rider)
                        && o.at.distance_m(&p) <= o.radius_m
                });
                assert_eq!(
                    w.owed_to_older(&rider, &p, &asking, since),
                    scan,
                    "step {step}"
                );
            }
        }
        assert_eq!(w.len(), all.len());
    }
}
