//! The rider index: an R-tree of riders over Earth-centred coordinates in metres, with the
//! riders' slots beside it (the trees hold slot indices; an id map finds a rider's slot). rstar measures squared distance in coordinate units, so we
//! index 3D points on the sphere (scaled to metres): chord distance there is monotonic in
//! great-circle distance, which makes k-nearest exact everywhere, including across the
//! antimeridian and near the poles. Candidates are then re-ranked by haversine distance.
//! Updates are remove + insert.
//!
//! A second tree holds only the riders open to offers: on a busy day most riders are busy,
//! and a search for available ones would otherwise walk past every busy rider nearby.

use crate::domain::geo::chord_for_arc_m;
use crate::domain::{GeoPoint, RiderId};
use rstar::primitives::GeomWithData;
use rstar::RTree;
use std::collections::{HashMap, HashSet};

/// A rider's place in `RiderIndex::slots`. The trees carry it rather than the id, so a
/// query reads each rider it finds by index: through the id map it was a hash of the id
/// and a probe of a 500k-entry table, cache misses per rider found and ~39 % of a
/// query's time (docs/performance.md, "City-scale matcher and planner"). Removal from a
/// tree also compares integers instead of id strings.
type SlotIx = u32;
type Entry = GeomWithData<[f64; 3], SlotIx>;

#[derive(Debug, Clone)]
struct Slot {
    rider_id: RiderId,
    point: GeoPoint,
    ecef: [f64; 3],
    available: bool,
    busy_until: Option<(u64, GeoPoint)>,
    shift_end_ms: Option<u64>,
}

impl Slot {
    fn new(
        rider_id: RiderId,
        point: GeoPoint,
        available: bool,
        busy_until: Option<(u64, GeoPoint)>,
        shift_end_ms: Option<u64>,
    ) -> Slot {
        Slot {
            rider_id,
            point,
            ecef: point.to_ecef_m(),
            available,
            busy_until,
            shift_end_ms,
        }
    }
}

/// A rider's whole place in the index ([`RiderIndex::extend`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub rider_id: RiderId,
    pub point: GeoPoint,
    /// May take an offer now.
    pub available: bool,
    /// A busy rider open to its next job: when and where it will be free.
    pub busy_until: Option<(u64, GeoPoint)>,
    pub shift_end_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Nearby {
    pub rider_id: RiderId,
    pub location: GeoPoint,
    pub distance_m: f64,
    pub available: bool,
    /// A busy rider open to its next job: when and where it will be free (`None`: an idle
    /// rider, free now where it stands).
    pub busy_until: Option<(u64, GeoPoint)>,
    /// When the rider's shift ends, if it said.
    pub shift_end_ms: Option<u64>,
}

#[derive(Default)]
pub struct RiderIndex {
    tree: RTree<Entry>,
    /// The riders whose slot says `available`, at the same points.
    open: RTree<Entry>,
    /// Each rider's slot; `None` is a free slot (in `free`), reused by the next new rider.
    slots: Vec<Option<Slot>>,
    free: Vec<SlotIx>,
    ids: HashMap<RiderId, SlotIx>,
}

impl RiderIndex {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Bulk-loads riders (faster than inserting one by one). A rider listed twice keeps
    /// its last entry.
    pub fn bulk(riders: Vec<(RiderId, GeoPoint, bool)>) -> Self {
        let slots = riders
            .into_iter()
            .map(|(id, point, available)| Slot::new(id, point, available, None, None))
            .collect();
        Self::from_slots(slots)
    }

    /// Both trees built in bulk from `slots`; of a rider listed twice the last is kept.
    fn from_slots(all: Vec<Slot>) -> Self {
        let mut index = Self {
            slots: Vec::with_capacity(all.len()),
            ids: HashMap::with_capacity(all.len()),
            ..Self::default()
        };
        for slot in all {
            match index.ids.get(&slot.rider_id) {
                Some(&ix) => index.slots[ix as usize] = Some(slot),
                None => {
                    index
                        .ids
                        .insert(slot.rider_id.clone(), slot_ix(index.slots.len()));
                    index.slots.push(Some(slot));
                }
            }
        }
        let entries = |only_available: bool| -> Vec<Entry> {
            index
                .slots
                .iter()
                .enumerate()
                .filter_map(|(ix, slot)| slot.as_ref().map(|s| (ix, s)))
                .filter(|(_, s)| !only_available || s.available)
                .map(|(ix, s)| Entry::new(s.ecef, slot_ix(ix)))
                .collect()
        };
        let (all, open) = (entries(false), entries(true));
        index.tree = RTree::bulk_load(all);
        index.open = RTree::bulk_load(open);
        index
    }

    /// Places many riders at once (a restart's city, chunk by chunk), each as a whole:
    /// the trees are rebuilt in bulk when they are many next to the riders already held,
    /// else each is placed as an update would.
    pub fn extend(&mut self, riders: Vec<Placement>) {
        if riders.len() * 4 < self.len() {
            for p in riders {
                self.upsert(&p.rider_id, p.point, p.available);
                self.set_busy_until(&p.rider_id, p.busy_until);
                self.set_shift_end(&p.rider_id, p.shift_end_ms);
            }
            return;
        }
        let mut slots: Vec<Slot> = std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .collect();
        slots.reserve(riders.len());
        for p in riders {
            slots.push(Slot::new(
                p.rider_id,
                p.point,
                p.available,
                p.busy_until,
                p.shift_end_ms,
            ));
        }
        *self = Self::from_slots(slots);
    }

    /// Inserts or moves a rider.
    pub fn upsert(&mut self, id: &RiderId, point: GeoPoint, available: bool) {
        let ecef = point.to_ecef_m();
        if let Some(&ix) = self.ids.get(id) {
            let slot = self.slots[ix as usize]
                .as_mut()
                .expect("a known rider has a live slot");
            if slot.ecef != ecef {
                self.tree.remove(&Entry::new(slot.ecef, ix));
                self.tree.insert(Entry::new(ecef, ix));
            }
            if slot.available && (!available || slot.ecef != ecef) {
                self.open.remove(&Entry::new(slot.ecef, ix));
            }
            if available && (!slot.available || slot.ecef != ecef) {
                self.open.insert(Entry::new(ecef, ix));
            }
            slot.point = point;
            slot.ecef = ecef;
            slot.available = available;
            slot.busy_until = None;
            return;
        }
        let slot = Some(Slot {
            rider_id: id.clone(),
            point,
            ecef,
            available,
            busy_until: None,
            shift_end_ms: None,
        });
        let ix = match self.free.pop() {
            Some(ix) => {
                self.slots[ix as usize] = slot;
                ix
            }
            None => {
                self.slots.push(slot);
                slot_ix(self.slots.len() - 1)
            }
        };
        self.ids.insert(id.clone(), ix);
        self.tree.insert(Entry::new(ecef, ix));
        if available {
            self.open.insert(Entry::new(ecef, ix));
        }
    }

    fn slot_mut(&mut self, id: &RiderId) -> Option<&mut Slot> {
        let ix = *self.ids.get(id)?;
        self.slots[ix as usize].as_mut()
    }

    /// Marks a rider as busy but open to its next job, free at `busy_until` (`None`: free
    /// now, or not available at all as `upsert` said).
    pub fn set_busy_until(&mut self, id: &RiderId, busy_until: Option<(u64, GeoPoint)>) {
        if let Some(slot) = self.slot_mut(id) {
            slot.busy_until = busy_until;
        }
    }

    /// When the rider's shift ends (`None`: it did not say).
    pub fn set_shift_end(&mut self, id: &RiderId, shift_end_ms: Option<u64>) {
        if let Some(slot) = self.slot_mut(id) {
            slot.shift_end_ms = shift_end_ms;
        }
    }

    pub fn set_available(&mut self, id: &RiderId, available: bool) {
        let Some(&ix) = self.ids.get(id) else {
            return;
        };
        let Some(slot) = self.slots[ix as usize].as_mut() else {
            return;
        };
        if slot.available != available {
            let entry = Entry::new(slot.ecef, ix);
            if available {
                self.open.insert(entry);
            } else {
                self.open.remove(&entry);
            }
        }
        slot.available = available;
    }

    pub fn remove(&mut self, id: &RiderId) -> bool {
        let Some(ix) = self.ids.remove(id) else {
            return false;
        };
        let slot = self.slots[ix as usize]
            .take()
            .expect("a known rider has a live slot");
        self.tree.remove(&Entry::new(slot.ecef, ix));
        if slot.available {
            self.open.remove(&Entry::new(slot.ecef, ix));
        }
        self.free.push(ix);
        true
    }

    /// Up to `k` riders within `radius_m` of `at`, nearest first by haversine distance.
    /// `only_available` skips riders that may not take an offer; `exclude` skips by id.
    pub fn nearest(
        &self,
        at: GeoPoint,
        k: usize,
        radius_m: f64,
        only_available: bool,
        exclude: &HashSet<RiderId>,
    ) -> Vec<Nearby> {
        let q = at.to_ecef_m();
        // A little slack on the chord bound: the exact cut is made on haversine below.
        let max_chord = chord_for_arc_m(radius_m) * 1.000_001 + 0.01;
        let max_d2 = max_chord * max_chord;
        let tree = if only_available {
            &self.open
        } else {
            &self.tree
        };
        let mut out: Vec<Nearby> = tree
            .nearest_neighbor_iter_with_distance_2(&q)
            .take_while(|(_, d2)| *d2 <= max_d2)
            .filter_map(|(e, _)| {
                let slot = self.slots.get(e.data as usize)?.as_ref()?;
                if (only_available && !slot.available) || exclude.contains(&slot.rider_id) {
                    return None;
                }
                let distance_m = at.distance_m(&slot.point);
                (distance_m <= radius_m).then(|| Nearby {
                    rider_id: slot.rider_id.clone(),
                    location: slot.point,
                    distance_m,
                    available: slot.available,
                    busy_until: slot.busy_until,
                    shift_end_ms: slot.shift_end_ms,
                })
            })
            .take(k)
            .collect();
        out.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
        out
    }
}

fn slot_ix(ix: usize) -> SlotIx {
    SlotIx::try_from(ix).expect("fewer than 2^32 riders")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn rid(i: usize) -> RiderId {
        RiderId::parse(&format!("r_{i}")).unwrap()
    }

    fn brute(
        riders: &[(RiderId, GeoPoint)],
        at: GeoPoint,
        k: usize,
        radius_m: f64,
    ) -> Vec<(RiderId, f64)> {
        let mut v: Vec<(RiderId, f64)> = riders
            .iter()
            .map(|(id, p)| (id.clone(), at.distance_m(p)))
            .filter(|(_, d)| *d <= radius_m)
            .collect();
        v.sort_by(|a, b| a.1.total_cmp(&b.1));
        v.truncate(k);
        v
    }

    /// A point up to `spread_deg` from `centre`, latitude clamped and longitude wrapped.
    fn random_point(rng: &mut impl Rng, centre: (f64, f64), spread_deg: f64) -> GeoPoint {
        let lat = (centre.0 + rng.gen_range(-spread_deg..spread_deg)).clamp(-90.0, 90.0);
        let mut lon = centre.1 + rng.gen_range(-spread_deg..spread_deg);
        if lon > 180.0 {
            lon -= 360.0
        }
        if lon < -180.0 {
            lon += 360.0
        }
        GeoPoint::new(lat, lon).unwrap()
    }

    /// Placing riders in chunks (bulk rebuilds while chunks are large, one by one once they
    /// are small next to the index, riders placed twice) ends as upserting each would.
    #[test]
    fn extend_in_chunks_ends_as_one_upsert_each() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let centre = (31.23, 121.47);
        let placements: Vec<Placement> = (0..3000)
            .map(|i| Placement {
                rider_id: rid(i % 2500),
                point: random_point(&mut rng, centre, 0.2),
                available: i % 3 != 0,
                busy_until: (i % 7 == 0).then(|| (i as u64, GeoPoint::new(31.2, 121.4).unwrap())),
                shift_end_ms: (i % 5 == 0).then_some(i as u64),
            })
            .collect();
        let mut one_by_one = RiderIndex::default();
        for p in &placements {
            one_by_one.upsert(&p.rider_id, p.point, p.available);
            one_by_one.set_busy_until(&p.rider_id, p.busy_until);
            one_by_one.set_shift_end(&p.rider_id, p.shift_end_ms);
        }
        let mut chunked = RiderIndex::default();
        let mut start = 0;
        for size in [100, 400, 1000, 50, 1450] {
            chunked.extend(placements[start..start + size].to_vec());
            start += size;
        }
        assert_eq!(chunked.len(), one_by_one.len());
        for _ in 0..50 {
            let at = random_point(&mut rng, centre, 0.2);
            for available in [true, false] {
                let none = HashSet::new();
                assert_eq!(
                    chunked.nearest(at, 20, 30_000.0, available, &none),
                    one_by_one.nearest(at, 20, 30_000.0, available, &none)
                );
            }
        }
    }

    fn check_region(seed: u64, centre: (f64, f64), spread_deg: f64) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let riders: Vec<(RiderId, GeoPoint)> = (0..2000)
            .map(|i| (rid(i), random_point(&mut rng, centre, spread_deg)))
            .collect();
        let mut idx = RiderIndex::default();
        for (id, p) in &riders {
            idx.upsert(id, *p, true);
        }
        for _ in 0..50 {
            let at = random_point(&mut rng, centre, spread_deg);
            let radius = rng.gen_range(1_000.0..200_000.0);
            let got: Vec<(RiderId, f64)> = idx
                .nearest(at, 10, radius, false, &HashSet::new())
                .into_iter()
                .map(|n| (n.rider_id, n.distance_m))
                .collect();
            let want = brute(&riders, at, 10, radius);
            assert_eq!(got.len(), want.len(), "at {at:?} r={radius}");
            for (g, w) in got.iter().zip(&want) {
                // ties may order differently; distances must agree
                assert!((g.1 - w.1).abs() < 1e-6, "{g:?} vs {w:?}");
            }
        }
    }

    #[test]
    fn agrees_with_brute_force_in_a_city() {
        check_region(1, (31.23, 121.47), 0.5);
    }

    #[test]
    fn agrees_with_brute_force_across_the_antimeridian() {
        check_region(2, (-16.5, 179.9), 0.8);
    }

    #[test]
    fn agrees_with_brute_force_at_high_latitude() {
        check_region(3, (78.2, 15.6), 1.5);
        check_region(4, (89.5, 0.0), 0.49);
    }

    #[test]
    fn moves_removes_and_skips_unavailable_or_excluded() {
        let mut idx = RiderIndex::default();
        let a = GeoPoint::new(10.0, 10.0).unwrap();
        idx.upsert(&rid(1), a, true);
        idx.upsert(&rid(2), a.destination(90.0, 100.0), true);
        idx.upsert(&rid(3), a.destination(90.0, 200.0), false);
        let near = idx.nearest(a, 10, 1000.0, true, &HashSet::new());
        assert_eq!(
            near.iter().map(|n| n.rider_id.clone()).collect::<Vec<_>>(),
            vec![rid(1), rid(2)]
        );
        let ex: HashSet<_> = [rid(1)].into_iter().collect();
        assert_eq!(idx.nearest(a, 10, 1000.0, true, &ex)[0].rider_id, rid(2));
        idx.upsert(&rid(1), a.destination(0.0, 5000.0), true);
        assert_eq!(
            idx.nearest(a, 1, 1000.0, false, &HashSet::new())[0].rider_id,
            rid(2)
        );
        assert!(idx.remove(&rid(2)));
        assert_eq!(idx.nearest(a, 10, 1000.0, false, &HashSet::new()).len(), 1);
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.tree.size(), 2);
    }

    #[test]
    fn a_removed_riders_slot_serves_the_next_new_rider() {
        let mut idx = RiderIndex::default();
        let a = GeoPoint::new(10.0, 10.0).unwrap();
        let far = a.destination(90.0, 50_000.0);
        idx.upsert(&rid(1), a, true);
        idx.upsert(&rid(2), far, true);
        assert!(idx.remove(&rid(1)));
        idx.upsert(&rid(3), a.destination(0.0, 100.0), true);
        idx.set_busy_until(&rid(3), Some((5_000, far)));
        assert_eq!(idx.slots.len(), 2, "the freed slot was reused");
        let near = idx.nearest(a, 10, 1000.0, true, &HashSet::new());
        assert_eq!(near.len(), 1);
        assert_eq!(near[0].rider_id, rid(3));
        assert!((near[0].distance_m - 100.0).abs() < 1e-6);
        assert_eq!(near[0].busy_until, Some((5_000, far)));
        assert!(!idx.remove(&rid(1)), "removed once");
        idx.set_available(&rid(1), true); // unknown: no effect
        assert_eq!((idx.len(), idx.tree.size(), idx.open.size()), (2, 2, 2));
    }

    #[test]
    fn bulk_keeps_a_riders_last_entry() {
        let a = GeoPoint::new(10.0, 10.0).unwrap();
        let b = a.destination(90.0, 10_000.0);
        let idx = RiderIndex::bulk(vec![
            (rid(1), a, true),
            (rid(2), a, false),
            (rid(1), b, true),
        ]);
        assert_eq!((idx.len(), idx.tree.size(), idx.open.size()), (2, 2, 1));
        let at_b = idx.nearest(b, 10, 100.0, true, &HashSet::new());
        assert_eq!(at_b.len(), 1);
        assert_eq!(at_b[0].rider_id, rid(1));
        assert!(idx.nearest(a, 10, 100.0, true, &HashSet::new()).is_empty());
        assert_eq!(
            idx.nearest(a, 10, 100.0, false, &HashSet::new())[0].rider_id,
            rid(2)
        );
    }

    #[test]
    fn available_search_agrees_with_brute_force_under_random_updates() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut idx = RiderIndex::default();
        let mut truth: HashMap<RiderId, (GeoPoint, bool)> = HashMap::new();
        for step in 0..4000 {
            let id = rid(rng.gen_range(0..200));
            match rng.gen_range(0..4) {
                0 | 1 => {
                    let p = random_point(&mut rng, (41.88, -87.63), 0.05);
                    let available = rng.gen_bool(0.3);
                    idx.upsert(&id, p, available);
                    truth.insert(id, (p, available));
                }
                2 => {
                    let available = rng.gen_bool(0.5);
                    idx.set_available(&id, available);
                    if let Some(t) = truth.get_mut(&id) {
                        t.1 = available;
                    }
                }
                _ => {
                    assert_eq!(idx.remove(&id), truth.remove(&id).is_some());
                }
            }
            if step % 50 == 0 {
                let at = random_point(&mut rng, (41.88, -87.63), 0.05);
                let open: Vec<(RiderId, GeoPoint)> = truth
                    .iter()
                    .filter(|(_, (_, a))| *a)
                    .map(|(id, (p, _))| (id.clone(), *p))
                    .collect();
                let want = brute(&open, at, 8, 3000.0);
                let got: Vec<(RiderId, f64)> = idx
                    .nearest(at, 8, 3000.0, true, &HashSet::new())
                    .into_iter()
                    .map(|n| (n.rider_id, n.distance_m))
                    .collect();
                assert_eq!(got.len(), want.len(), "step {step}");
                for (g, w) in got.iter().zip(&want) {
                    assert!((g.1 - w.1).abs() < 1e-6, "step {step}: {g:?} vs {w:?}");
                }
            }
        }
        assert_eq!(idx.open.size(), truth.values().filter(|t| t.1).count());
        assert_eq!(idx.tree.size(), truth.len());
    }
}
