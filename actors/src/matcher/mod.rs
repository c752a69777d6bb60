//! The rider index: an R-tree of riders over Earth-centred coordinates in metres, with the
//! riders' slots beside it (the trees hold slot indices; an id map finds a rider's slot). rstar measures squared distance in coordinate units, so we
//! index 3D points on the sphere (scaled to metres): chord distance there is monotonic in
//! great-circle distance, which makes k-nearest exact everywhere, including across the
//! antimeridian and near the poles. Candidates are then re-ranked by haversine distance.
//! Updates are remove + insert, and only when a rider has strayed more than
//! [`INDEX_SLACK_M`] from where the trees hold it: searches widen their bounds by the slack
//! and rank by where each rider really is, so answers stay exact while most fixes (a few
//! metres to a few tens of metres apart) leave the trees alone. Moving an entry was ~15 %
//! of the server's CPU under a stream of fixes (docs/performance.md).
//!
//! A second tree holds only the riders open to offers: on a busy day most riders are busy,
//! and a search for available ones would otherwise walk past every busy rider nearby.

pub mod feed;

use crate::domain::geo::chord_for_arc_m;
use crate::domain::{GeoPoint, RiderId};
use rstar::primitives::GeomWithData;
use rstar::RTree;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};

/// How far a rider may be from its point in the trees before the trees move it, metres
/// (the default of `dispatch.index_slack_m`).
/// A rider at 5 m/s reporting every 10 s moves ~50 m a fix, so about every other fix of a
/// moving rider touches the trees; a search visits the riders in a ring this wide beyond
/// its answer, a few more entries in a dense city.
pub const INDEX_SLACK_M: f64 = 50.0;

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
    /// Where the rider is (`point` in the trees' coordinates).
    ecef: [f64; 3],
    /// Where the trees hold it: within the index's slack of `ecef`.
    indexed: [f64; 3],
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
        let ecef = point.to_ecef_m();
        Slot {
            rider_id,
            point,
            ecef,
            indexed: ecef,
            available,
            busy_until,
            shift_end_ms,
        }
    }
}

/// A rider's whole place in the index ([`RiderIndex::extend`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

pub struct RiderIndex {
    /// How far a rider may be from its point in the trees before they move it, metres.
    slack_m: f64,
    tree: RTree<Entry>,
    /// The riders whose slot says `available`, at the same points.
    open: RTree<Entry>,
    /// Each rider's slot; `None` is a free slot (in `free`), reused by the next new rider.
    slots: Vec<Option<Slot>>,
    free: Vec<SlotIx>,
    ids: HashMap<RiderId, SlotIx>,
}

impl Default for RiderIndex {
    fn default() -> Self {
        Self {
            slack_m: INDEX_SLACK_M,
            tree: RTree::default(),
            open: RTree::default(),
            slots: Vec::new(),
            free: Vec::new(),
            ids: HashMap::new(),
        }
    }
}

impl RiderIndex {
    /// The same index with another slack (0: the trees follow every move). A tighter
    /// slack than the index had re-places the riders that trail.
    pub fn with_slack_m(self, slack_m: f64) -> Self {
        let slack_m = if slack_m.is_finite() {
            slack_m.max(0.0)
        } else {
            INDEX_SLACK_M
        };
        if slack_m >= self.slack_m {
            return Self { slack_m, ..self };
        }
        let slots = self
            .slots
            .into_iter()
            .flatten()
            .map(|s| Slot {
                indexed: s.ecef,
                ..s
            })
            .collect();
        Self::from_slots(slots, slack_m)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn contains(&self, id: &RiderId) -> bool {
        self.ids.contains_key(id)
    }

    /// Bulk-loads riders (faster than inserting one by one). A rider listed twice keeps
    /// its last entry.
    pub fn bulk(riders: Vec<(RiderId, GeoPoint, bool)>) -> Self {
        let slots = riders
            .into_iter()
            .map(|(id, point, available)| Slot::new(id, point, available, None, None))
            .collect();
        Self::from_slots(slots, INDEX_SLACK_M)
    }

    /// Both trees built in bulk from `slots`; of a rider listed twice the last is kept.
    fn from_slots(all: Vec<Slot>, slack_m: f64) -> Self {
        let mut index = Self {
            slack_m,
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
                .map(|(ix, s)| Entry::new(s.indexed, slot_ix(ix)))
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
        *self = Self::from_slots(slots, self.slack_m);
    }

    /// Inserts or moves a rider.
    pub fn upsert(&mut self, id: &RiderId, point: GeoPoint, available: bool) {
        let ecef = point.to_ecef_m();
        if let Some(&ix) = self.ids.get(id) {
            let slot = self.slots[ix as usize]
                .as_mut()
                .expect("a known rider has a live slot");
            let moved = chord_m(&slot.indexed, &ecef) > self.slack_m;
            let indexed = if moved { ecef } else { slot.indexed };
            if moved {
                self.tree.remove(&Entry::new(slot.indexed, ix));
                self.tree.insert(Entry::new(indexed, ix));
            }
            if slot.available && (!available || moved) {
                self.open.remove(&Entry::new(slot.indexed, ix));
            }
            if available && (!slot.available || moved) {
                self.open.insert(Entry::new(indexed, ix));
            }
            slot.point = point;
            slot.ecef = ecef;
            slot.indexed = indexed;
            slot.available = available;
            slot.busy_until = None;
            return;
        }
        let slot = Some(Slot {
            rider_id: id.clone(),
            point,
            ecef,
            indexed: ecef,
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
            let entry = Entry::new(slot.indexed, ix);
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
        self.tree.remove(&Entry::new(slot.indexed, ix));
        if slot.available {
            self.open.remove(&Entry::new(slot.indexed, ix));
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
        if k == 0 {
            return Vec::new();
        }
        let q = at.to_ecef_m();
        // A little slack on the chord bound: the exact cut is made on haversine below.
        let max_chord = chord_for_arc_m(radius_m) * 1.000_001 + 0.01;
        // The trees hold each rider up to the slack from where it is: walk that much
        // further, and rank by the true chord (monotonic in haversine distance).
        let reach = max_chord + self.slack_m;
        let tree = if only_available {
            &self.open
        } else {
            &self.tree
        };
        // The k nearest so far, farthest on top.
        let mut best: BinaryHeap<Ranked> = BinaryHeap::with_capacity(k + 1);
        for (e, d2) in tree.nearest_neighbor_iter_with_distance_2(&q) {
            let indexed_m = d2.sqrt();
            if indexed_m > reach {
                break;
            }
            // Every entry from here on is at least `indexed_m - slack` away in truth.
            if best.len() == k
                && best
                    .peek()
                    .is_some_and(|w| indexed_m - self.slack_m > w.chord_m)
            {
                break;
            }
            let Some(slot) = self.slots.get(e.data as usize).and_then(Option::as_ref) else {
                continue;
            };
            if (only_available && !slot.available) || exclude.contains(&slot.rider_id) {
                continue;
            }
            let chord_m = chord_m(&q, &slot.ecef);
            if chord_m > max_chord
                || best.len() == k && best.peek().is_some_and(|w| chord_m >= w.chord_m)
            {
                continue;
            }
            let distance_m = at.distance_m(&slot.point);
            if distance_m > radius_m {
                continue;
            }
            if best.len() == k {
                best.pop();
            }
            best.push(Ranked {
                chord_m,
                distance_m,
                ix: e.data,
            });
        }
        // Nearest first by chord, equal chords by slot; then by haversine (the same order
        // but for rounding), stable, so equal distances keep that order and a replay
        // repeats.
        let mut out: Vec<Nearby> = best
            .into_sorted_vec()
            .into_iter()
            .filter_map(|r| {
                let slot = self.slots[r.ix as usize].as_ref()?;
                Some(Nearby {
                    rider_id: slot.rider_id.clone(),
                    location: slot.point,
                    distance_m: r.distance_m,
                    available: slot.available,
                    busy_until: slot.busy_until,
                    shift_end_ms: slot.shift_end_ms,
                })
            })
            .collect();
        out.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
        out
    }
}

/// A candidate of a search, ordered by true chord (ties by slot, so answers repeat).
struct Ranked {
    chord_m: f64,
    distance_m: f64,
    ix: SlotIx,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.chord_m
            .total_cmp(&other.chord_m)
            .then(self.ix.cmp(&other.ix))
    }
}

fn chord_m(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

fn slot_ix(ix: usize) -> SlotIx {
    SlotIx::try_from(ix).expect("fewer than 2^32 riders")
}

#[cfg(test)]
mod tests;
