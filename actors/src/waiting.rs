//! Orders waiting for a rider (their widest search found nobody), and the rule that serves
//! them oldest first: a rider who comes free is owed to the longest-waiting order that
//! could take it, so a younger order's search passes over that rider. Each waiting order
//! is owed one rider: the riders beyond those go to younger orders. The orders' pickups
//! sit in an R-tree (Earth-centred metres, as the rider index), so "which of these riders
//! are owed to older orders?" looks only at orders within reach of the riders, not at
//! every order waiting: a busy day's backlog does not slow each search down.

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

    /// Which of `found` (riders at their points, the asking order's search, nearest first)
    /// are owed to orders that have waited longer than `asking`, whose dispatch started at
    /// `since_ms` (ties go to the smaller order id). Each older waiting order within reach
    /// claims one rider, oldest first, the one nearest its pickup it can take: a waiting
    /// order takes one rider, so it holds back one, not every rider in its reach. (It
    /// held back all of them: with twenty riders idle, the orders behind the oldest found
    /// nobody until it had its rider, one order per retry; a backlog after restarts then
    /// outlived the riders' idle time.) True at `i`: `found[i]` is withheld.
    pub fn withheld(
        &self,
        found: &[(&RiderId, GeoPoint)],
        asking: &OrderId,
        since_ms: u64,
    ) -> Vec<bool> {
        let mut claimed = vec![false; found.len()];
        let Some((&reach_m, _)) = self.radii.last_key_value() else {
            return claimed;
        };
        let chord_m = chord_for_arc_m(reach_m as f64);
        // Each older order in reach of any found rider, with the riders it could take.
        let mut takers: HashMap<&OrderId, Vec<usize>> = HashMap::new();
        for (i, (rider, point)) in found.iter().enumerate() {
            for pin in self
                .pickups
                .locate_within_distance(point.to_ecef_m(), chord_m * chord_m)
            {
                let id = &pin.data;
                let Some(w) = self.orders.get(id) else {
                    continue;
                };
                if id != asking
                    && (w.since_ms, id) < (since_ms, asking)
                    && !w.exclude.contains(*rider)
                    && w.at.distance_m(point) <= w.radius_m
                {
                    takers.entry(id).or_default().push(i);
                }
            }
        }
        let mut older: Vec<(u64, &OrderId, Vec<usize>)> = takers
            .into_iter()
            .map(|(id, riders)| (self.orders[id].since_ms, id, riders))
            .collect();
        older.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mut left = found.len();
        for (_, id, riders) in older {
            if left == 0 {
                break;
            }
            let at = self.orders[id].at;
            let nearest = riders
                .into_iter()
                .filter(|&i| !claimed[i])
                .min_by(|&a, &b| {
                    at.distance_m(&found[a].1)
                        .total_cmp(&at.distance_m(&found[b].1))
                });
            if let Some(i) = nearest {
                claimed[i] = true;
                left -= 1;
            }
        }
        claimed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn rid(i: usize) -> RiderId {
        RiderId::parse(&format!("r_{i}")).unwrap()
    }

    fn oid(name: &str) -> OrderId {
        OrderId::parse(name).unwrap()
    }

    fn wait_at(at: GeoPoint, since_ms: u64, radius_m: f64) -> Waiting {
        Waiting {
            since_ms,
            at,
            radius_m,
            exclude: HashSet::new(),
        }
    }

    #[test]
    fn a_free_rider_is_owed_to_the_longest_waiting_order_in_reach() {
        let at = GeoPoint::new(10.0, 10.0).unwrap();
        let rider = rid(1);
        let mut w = WaitingOrders::default();
        let (old, young) = (oid("o_old"), oid("o_young"));
        w.wait(old.clone(), wait_at(at, 1_000, 5_000.0));
        let near = at.destination(0.0, 1_000.0);
        assert_eq!(w.withheld(&[(&rider, near)], &young, 2_000), [true]);
        assert_eq!(
            w.withheld(&[(&rider, near)], &old, 1_000),
            [false],
            "not owed to itself"
        );
        let far = at.destination(0.0, 9_000.0);
        assert_eq!(
            w.withheld(&[(&rider, far)], &young, 2_000),
            [false],
            "out of the old order's reach"
        );
        assert_eq!(
            w.withheld(&[(&rider, near)], &young, 500),
            [false],
            "the asker waited longer"
        );
        let mut declined = wait_at(at, 1_000, 5_000.0);
        declined.exclude.insert(rider.clone());
        w.wait(old.clone(), declined);
        assert_eq!(
            w.withheld(&[(&rider, near)], &young, 2_000),
            [false],
            "the old order's decline memory"
        );
        w.done(&old);
        assert!(w.is_empty());
    }

    /// The chaos run's stall: one order waiting, twenty riders free near it. It takes one
    /// of them (the one nearest its pickup); the younger orders get the others.
    #[test]
    fn a_waiting_order_holds_back_one_rider_not_every_rider_in_its_reach() {
        let pickup = GeoPoint::new(31.23, 121.47).unwrap();
        let mut w = WaitingOrders::default();
        w.wait(oid("o_oldest"), wait_at(pickup, 1_000, 20_000.0));
        let riders: Vec<RiderId> = (0..20).map(rid).collect();
        // In a line east of the oldest order's pickup, 100 m apart.
        let found: Vec<(&RiderId, GeoPoint)> = riders
            .iter()
            .enumerate()
            .map(|(i, r)| (r, pickup.destination(90.0, 100.0 * i as f64)))
            .collect();
        let got = w.withheld(&found, &oid("o_young"), 2_000);
        assert_eq!(got.iter().filter(|&&x| x).count(), 1, "{got:?}");
        assert!(got[0], "the rider nearest the oldest order is its own");
        // A second waiting order, younger than the first, older than the asker: two held.
        w.wait(oid("o_second"), wait_at(pickup, 1_500, 20_000.0));
        let got = w.withheld(&found, &oid("o_young"), 2_000);
        assert_eq!(got.iter().filter(|&&x| x).count(), 2, "{got:?}");
        assert!(got[0] && got[1], "{got:?}");
        // The second order asking: only the oldest holds one back.
        let got = w.withheld(&found, &oid("o_second"), 1_500);
        assert_eq!(got.iter().filter(|&&x| x).count(), 1, "{got:?}");
        // More older orders than riders found: every rider is held back.
        let few = &found[..1];
        assert_eq!(w.withheld(few, &oid("o_young"), 2_000), [true]);
    }

    /// What `withheld` answers, from a scan of every waiting order (no R-tree).
    fn scan(
        all: &HashMap<OrderId, Waiting>,
        found: &[(&RiderId, GeoPoint)],
        asking: &OrderId,
        since_ms: u64,
    ) -> Vec<bool> {
        let can_take = |id: &OrderId, o: &Waiting, (rider, p): &(&RiderId, GeoPoint)| {
            id != asking
                && (o.since_ms, id) < (since_ms, asking)
                && !o.exclude.contains(*rider)
                && o.at.distance_m(p) <= o.radius_m
        };
        let mut older: Vec<(&OrderId, &Waiting)> = all.iter().collect();
        older.sort_by(|a, b| (a.1.since_ms, a.0).cmp(&(b.1.since_ms, b.0)));
        let mut claimed = vec![false; found.len()];
        for (id, o) in older {
            let mut best: Option<(f64, usize)> = None;
            for (i, f) in found.iter().enumerate() {
                if claimed[i] || !can_take(id, o, f) {
                    continue;
                }
                let d = o.at.distance_m(&f.1);
                if best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, i));
                }
            }
            if let Some((_, i)) = best {
                claimed[i] = true;
            }
        }
        claimed
    }

    /// The R-tree answers exactly what a scan of every waiting order answers; and no rider
    /// is passed over unless an older order that can take it is left without one.
    #[test]
    fn agrees_with_a_scan_of_every_waiting_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let centre = GeoPoint::new(41.88, -87.63).unwrap();
        let mut w = WaitingOrders::default();
        let mut all: HashMap<OrderId, Waiting> = HashMap::new();
        let riders: Vec<RiderId> = (0..20).map(rid).collect();
        for step in 0..3000 {
            let id = oid(&format!("o_{}", rng.gen_range(0..300)));
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
                let n = rng.gen_range(0..12);
                let found: Vec<(&RiderId, GeoPoint)> = riders[..n]
                    .iter()
                    .map(|r| {
                        let p = centre
                            .destination(rng.gen_range(0.0..360.0), rng.gen_range(0.0..20_000.0));
                        (r, p)
                    })
                    .collect();
                let asking = oid(&format!("o_{}", rng.gen_range(0..300)));
                let since = rng.gen_range(0..1000);
                let got = w.withheld(&found, &asking, since);
                assert_eq!(got, scan(&all, &found, &asking, since), "step {step}");
                let held = got.iter().filter(|&&x| x).count();
                let older_takers = all
                    .iter()
                    .filter(|(id, o)| {
                        *id != &asking
                            && (o.since_ms, *id) < (since, &asking)
                            && found.iter().any(|(r, p)| {
                                !o.exclude.contains(*r) && o.at.distance_m(p) <= o.radius_m
                            })
                    })
                    .count();
                assert!(
                    held <= older_takers,
                    "step {step}: one rider per older order"
                );
            }
        }
        assert_eq!(w.len(), all.len());
    }
}
