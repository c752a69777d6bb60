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

/// Riders drifting by a few metres to a few tens of metres stay where the trees hold
/// them, while every search still answers from where they really are.
#[test]
fn small_moves_stay_exact_while_the_trees_trail() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let centre = (52.52, 13.40);
    let mut idx = RiderIndex::default();
    let mut truth: HashMap<RiderId, (GeoPoint, bool)> = HashMap::new();
    for i in 0..300 {
        let p = random_point(&mut rng, centre, 0.02);
        let available = i % 4 != 0;
        idx.upsert(&rid(i), p, available);
        truth.insert(rid(i), (p, available));
    }
    let mut trailing = 0;
    for step in 0..3000 {
        let id = rid(rng.gen_range(0..300));
        let (p, available) = truth[&id];
        // Mostly small steps, now and then one past the slack.
        let step_m = if rng.gen_bool(0.9) {
            rng.gen_range(0.0..30.0)
        } else {
            rng.gen_range(60.0..400.0)
        };
        let q = p.destination(rng.gen_range(0.0..360.0), step_m);
        let available = if rng.gen_bool(0.05) {
            !available
        } else {
            available
        };
        idx.upsert(&id, q, available);
        truth.insert(id.clone(), (q, available));
        let slot = idx.slots[idx.ids[&id] as usize].as_ref().unwrap();
        assert!(chord_m(&slot.indexed, &slot.ecef) <= INDEX_SLACK_M);
        if slot.indexed != slot.ecef {
            trailing += 1;
        }
        if step % 10 == 0 {
            let at = random_point(&mut rng, centre, 0.02);
            let radius = rng.gen_range(20.0..3000.0);
            let k = rng.gen_range(1..12);
            for only_available in [true, false] {
                let pool: Vec<(RiderId, GeoPoint)> = truth
                    .iter()
                    .filter(|(_, (_, a))| *a || !only_available)
                    .map(|(id, (p, _))| (id.clone(), *p))
                    .collect();
                let want = brute(&pool, at, k, radius);
                let got = idx.nearest(at, k, radius, only_available, &HashSet::new());
                assert_eq!(got.len(), want.len(), "step {step}");
                for (g, w) in got.iter().zip(&want) {
                    assert!((g.distance_m - w.1).abs() < 1e-6, "step {step}");
                    assert_eq!(g.location, truth[&g.rider_id].0, "answers the true point");
                }
            }
        }
    }
    assert!(
        trailing > 1000,
        "most small moves left the trees alone ({trailing})"
    );
    // A tighter slack re-places whoever trails; answers do not change.
    let at = random_point(&mut rng, centre, 0.02);
    let before = idx.nearest(at, 10, 2000.0, false, &HashSet::new());
    let idx = idx.with_slack_m(0.0);
    assert!(idx.slots.iter().flatten().all(|s| s.indexed == s.ecef));
    assert_eq!(idx.nearest(at, 10, 2000.0, false, &HashSet::new()), before);
    let mut idx = idx;
    assert_eq!(idx.tree.size(), 300);
    assert_eq!(idx.open.size(), truth.values().filter(|t| t.1).count());
    for (id, _) in truth {
        assert!(idx.remove(&id));
    }
    assert_eq!((idx.tree.size(), idx.open.size()), (0, 0));
}
