//! The rider index (`matcher::RiderIndex`: two R-trees over slot indices, an id map, free
//! slots reused) against a brute-force oracle (a map of riders, every query a full scan),
//! under random inserts, moves, availability changes, removals, chunked placements
//! (`extend`) and bulk loads, in a city, across the antimeridian and near a pole.
//!
//! Every query (`nearest`: k, radius, available only or not, riders excluded) must answer
//! what the oracle answers: as many riders, the same distances in the same order, the
//! same riders wherever the distances are not tied at the cut, and each rider with its own
//! position, availability, next-job window and shift end.
//!
//! Cases: `PROPTEST_CASES` (default 256; docs/reliability.md gives the figure of a long run).

use dispatch_actors::domain::{GeoPoint, RiderId};
use dispatch_actors::matcher::{Nearby, Placement, RiderIndex};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

const RIDERS: u8 = 24;

/// Where riders are: a city, the antimeridian, near the north pole.
const REGIONS: [(f64, f64, f64); 3] = [
    (31.23, 121.47, 0.05),
    (-16.5, 179.99, 0.05),
    (89.9, 0.0, 0.2),
];

fn rid(i: u8) -> RiderId {
    RiderId::parse(&format!("r_{i}")).unwrap()
}

/// A point `(dlat, dlon)` (fractions of the region's spread) from the region's centre,
/// latitude clamped and longitude wrapped.
fn point(region: usize, (dlat, dlon): (f64, f64)) -> GeoPoint {
    let (lat, lon, spread) = REGIONS[region];
    let lat = (lat + dlat * spread).clamp(-90.0, 90.0);
    let mut lon = lon + dlon * spread;
    if lon > 180.0 {
        lon -= 360.0;
    }
    if lon < -180.0 {
        lon += 360.0;
    }
    GeoPoint::new(lat, lon).unwrap()
}

#[derive(Debug, Clone, PartialEq)]
struct Rider {
    point: GeoPoint,
    available: bool,
    busy_until: Option<(u64, GeoPoint)>,
    shift_end_ms: Option<u64>,
}

type Offset = (f64, f64);

#[derive(Debug, Clone)]
enum Op {
    Upsert(u8, Offset, bool),
    /// Moves a rider a few metres (a rider already known, or a new one).
    Nudge(u8, f64, f64),
    SetAvailable(u8, bool),
    BusyUntil(u8, Option<(u64, Offset)>),
    ShiftEnd(u8, Option<u64>),
    Remove(u8),
    Extend(Vec<(u8, Offset, bool, Option<u64>)>),
    Bulk(Vec<(u8, Offset, bool)>),
    Query {
        at: Offset,
        k: usize,
        radius_m: f64,
        only_available: bool,
        exclude: Vec<u8>,
    },
}

fn offset() -> impl Strategy<Value = Offset> {
    prop_oneof![
        4 => (-1.0f64..1.0, -1.0f64..1.0),
        // Riders on the same spot: ties.
        1 => Just((0.0, 0.0)),
        1 => prop::sample::select(vec![(0.5, 0.5), (-0.5, 0.25)]),
    ]
}

fn rider() -> impl Strategy<Value = u8> {
    0..RIDERS
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (rider(), offset(), any::<bool>()).prop_map(|(r, p, a)| Op::Upsert(r, p, a)),
        3 => (rider(), 0.0f64..360.0, 0.0f64..500.0).prop_map(|(r, b, m)| Op::Nudge(r, b, m)),
        2 => (rider(), any::<bool>()).prop_map(|(r, a)| Op::SetAvailable(r, a)),
        1 => (rider(), prop::option::of((0u64..1_000_000, offset())))
            .prop_map(|(r, b)| Op::BusyUntil(r, b)),
        1 => (rider(), prop::option::of(0u64..1_000_000)).prop_map(|(r, s)| Op::ShiftEnd(r, s)),
        2 => rider().prop_map(Op::Remove),
        1 => prop::collection::vec(
            (rider(), offset(), any::<bool>(), prop::option::of(0u64..1_000_000)),
            0..30,
        )
        .prop_map(Op::Extend),
        1 => prop::collection::vec((rider(), offset(), any::<bool>()), 0..30).prop_map(Op::Bulk),
        5 => (
            offset(),
            1usize..12,
            prop_oneof![1.0f64..2_000.0, 2_000.0f64..50_000.0],
            any::<bool>(),
            prop::collection::vec(rider(), 0..4),
        )
            .prop_map(|(at, k, radius_m, only_available, exclude)| Op::Query {
                at,
                k,
                radius_m,
                only_available,
                exclude,
            }),
    ]
}

/// The index and the oracle, side by side.
struct Pair {
    region: usize,
    index: RiderIndex,
    oracle: HashMap<RiderId, Rider>,
}

impl Pair {
    fn upsert(&mut self, id: RiderId, p: GeoPoint, available: bool) {
        self.index.upsert(&id, p, available);
        // A move keeps the shift end and clears the next-job window (`upsert`'s contract).
        let shift_end_ms = self.oracle.get(&id).and_then(|r| r.shift_end_ms);
        self.oracle.insert(
            id,
            Rider {
                point: p,
                available,
                busy_until: None,
                shift_end_ms,
            },
        );
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        let region = self.region;
        match op {
            Op::Upsert(r, at, available) => self.upsert(rid(r), point(region, at), available),
            Op::Nudge(r, bearing, m) => {
                let id = rid(r);
                let (from, available) = self
                    .oracle
                    .get(&id)
                    .map(|x| (x.point, x.available))
                    .unwrap_or((point(region, (0.0, 0.0)), true));
                self.upsert(id, from.destination(bearing, m), available);
            }
            Op::SetAvailable(r, available) => {
                self.index.set_available(&rid(r), available);
                if let Some(x) = self.oracle.get_mut(&rid(r)) {
                    x.available = available;
                }
            }
            Op::BusyUntil(r, b) => {
                let b = b.map(|(t, at)| (t, point(region, at)));
                self.index.set_busy_until(&rid(r), b);
                if let Some(x) = self.oracle.get_mut(&rid(r)) {
                    x.busy_until = b;
                }
            }
            Op::ShiftEnd(r, s) => {
                self.index.set_shift_end(&rid(r), s);
                if let Some(x) = self.oracle.get_mut(&rid(r)) {
                    x.shift_end_ms = s;
                }
            }
            Op::Remove(r) => {
                let known = self.oracle.remove(&rid(r)).is_some();
                prop_assert_eq!(self.index.remove(&rid(r)), known);
            }
            Op::Extend(list) => {
                let placements: Vec<Placement> = list
                    .iter()
                    .map(|&(r, at, available, shift)| Placement {
                        rider_id: rid(r),
                        point: point(region, at),
                        available,
                        busy_until: None,
                        shift_end_ms: shift,
                    })
                    .collect();
                self.index.extend(placements.clone());
                // Each placed whole: as an upsert, then its window and shift end.
                for p in placements {
                    self.oracle.insert(
                        p.rider_id,
                        Rider {
                            point: p.point,
                            available: p.available,
                            busy_until: p.busy_until,
                            shift_end_ms: p.shift_end_ms,
                        },
                    );
                }
            }
            Op::Bulk(list) => {
                let riders: Vec<(RiderId, GeoPoint, bool)> = list
                    .iter()
                    .map(|&(r, at, a)| (rid(r), point(region, at), a))
                    .collect();
                self.index = RiderIndex::bulk(riders.clone());
                self.oracle.clear();
                for (id, p, available) in riders {
                    self.oracle.insert(
                        id,
                        Rider {
                            point: p,
                            available,
                            busy_until: None,
                            shift_end_ms: None,
                        },
                    );
                }
            }
            Op::Query {
                at,
                k,
                radius_m,
                only_available,
                exclude,
            } => {
                let at = point(region, at);
                let exclude: HashSet<RiderId> = exclude.into_iter().map(rid).collect();
                let got = self
                    .index
                    .nearest(at, k, radius_m, only_available, &exclude);
                self.check_query(at, k, radius_m, only_available, &exclude, &got)?;
            }
        }
        prop_assert_eq!(self.index.len(), self.oracle.len());
        Ok(())
    }

    fn check_query(
        &self,
        at: GeoPoint,
        k: usize,
        radius_m: f64,
        only_available: bool,
        exclude: &HashSet<RiderId>,
        got: &[Nearby],
    ) -> Result<(), TestCaseError> {
        let mut want: Vec<(&RiderId, f64)> = self
            .oracle
            .iter()
            .filter(|(id, r)| (!only_available || r.available) && !exclude.contains(*id))
            .map(|(id, r)| (id, at.distance_m(&r.point)))
            .filter(|(_, d)| *d <= radius_m)
            .collect();
        want.sort_by(|a, b| a.1.total_cmp(&b.1));
        want.truncate(k);
        prop_assert_eq!(got.len(), want.len(), "{:?} vs {:?}", got, want);
        let mut seen = HashSet::new();
        for (g, (_, wd)) in got.iter().zip(&want) {
            prop_assert!((g.distance_m - wd).abs() < 1e-6, "{:?} vs {}", g, wd);
            prop_assert!(seen.insert(g.rider_id.clone()), "{} twice", g.rider_id);
            let r = self.oracle.get(&g.rider_id);
            prop_assert!(r.is_some(), "{} is not in the index", g.rider_id);
            let r = r.unwrap();
            prop_assert_eq!(g.location, r.point);
            prop_assert_eq!(g.available, r.available);
            prop_assert_eq!(g.busy_until, r.busy_until);
            prop_assert_eq!(g.shift_end_ms, r.shift_end_ms);
            prop_assert!((at.distance_m(&r.point) - g.distance_m).abs() < 1e-9);
        }
        // Below the distance at the cut, the riders are determined: the very same ones.
        if let Some(&(_, cut)) = want.last() {
            let sure: HashSet<&RiderId> = want
                .iter()
                .filter(|(_, d)| *d < cut - 1e-6)
                .map(|(id, _)| *id)
                .collect();
            let got_ids: HashSet<&RiderId> = got.iter().map(|n| &n.rider_id).collect();
            prop_assert!(sure.is_subset(&got_ids), "{:?} not in {:?}", sure, got_ids);
        }
        Ok(())
    }
}

proptest! {
    // ProptestConfig::default() reads PROPTEST_CASES.
    #[test]
    fn the_index_answers_what_a_full_scan_answers(
        region in 0..REGIONS.len(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut pair = Pair { region, index: RiderIndex::default(), oracle: HashMap::new() };
        for op in ops {
            pair.apply(op)?;
        }
        // A last look from every rider's own position, whole fleet and available only.
        let spots: Vec<GeoPoint> = pair.oracle.values().map(|r| r.point).collect();
        for at in spots {
            for only_available in [false, true] {
                let got = pair.index.nearest(at, 5, 10_000.0, only_available, &HashSet::new());
                pair.check_query(at, 5, 10_000.0, only_available, &HashSet::new(), &got)?;
            }
        }
    }
}
