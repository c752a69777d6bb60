//! Travel times, the projection of one route (rider → merchant → drop-offs in sequence),
//! and cheapest insertion of a drop-off into a sequence.

use super::model::TravelModel;
use crate::domain::GeoPoint;

/// When a route's stops happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteProjection {
    /// Arrival at the merchant.
    pub arrive_ms: u64,
    /// The pickup: no earlier than arrival + half the pickup service, nor than ready.
    pub pickup_ms: u64,
    /// Each handover, in sequence: arrival + half the drop-off service.
    pub dropoff_ms: Vec<u64>,
}

impl TravelModel {
    /// Straight-line travel time, rounded up to the millisecond.
    pub fn travel_ms(&self, from: &GeoPoint, to: &GeoPoint) -> u64 {
        let distance_m = from.distance_m(to);
        if distance_m <= 0.0 {
            return 0;
        }
        // A zero or negative speed would mean "never arrives"; f64 division then gives
        // infinity, which `as u64` saturates to u64::MAX.
        (distance_m * 1000.0 / self.speed_mps).ceil() as u64
    }

    /// The route of a rider free at `start_ms` at `from`: to the merchant at `pickup`,
    /// pick up once the food is ready (`ready_ms`, the latest ready time of the orders),
    /// then each drop-off in sequence.
    pub fn project(
        &self,
        start_ms: u64,
        from: &GeoPoint,
        pickup: &GeoPoint,
        ready_ms: u64,
        drops: &[GeoPoint],
    ) -> RouteProjection {
        let half_pickup = self.pickup_service_ms / 2;
        let half_dropoff = self.dropoff_service_ms / 2;
        let arrive_ms = start_ms.saturating_add(self.travel_ms(from, pickup));
        let pickup_ms = arrive_ms.saturating_add(half_pickup).max(ready_ms);
        let mut depart_ms = pickup_ms.saturating_add(self.pickup_service_ms - half_pickup);
        let mut at = *pickup;
        let mut dropoff_ms = Vec::with_capacity(drops.len());
        for drop in drops {
            let handover = depart_ms
                .saturating_add(self.travel_ms(&at, drop))
                .saturating_add(half_dropoff);
            dropoff_ms.push(handover);
            depart_ms = handover.saturating_add(self.dropoff_service_ms - half_dropoff);
            at = *drop;
        }
        RouteProjection {
            arrive_ms,
            pickup_ms,
            dropoff_ms,
        }
    }

    /// The same route started `by_ms` later: arrival moves by that much, the pickup waits
    /// for the food (`ready_ms`) as before, and every drop-off moves with the pickup. Equal
    /// to projecting again from the later start, without measuring a distance.
    pub fn delay(&self, route: &RouteProjection, by_ms: u64, ready_ms: u64) -> RouteProjection {
        let arrive_ms = route.arrive_ms.saturating_add(by_ms);
        let pickup_ms = arrive_ms
            .saturating_add(self.pickup_service_ms / 2)
            .max(ready_ms);
        let moved_ms = pickup_ms - route.pickup_ms.min(pickup_ms);
        RouteProjection {
            arrive_ms,
            pickup_ms,
            dropoff_ms: route
                .dropoff_ms
                .iter()
                .map(|d| d.saturating_add(moved_ms))
                .collect(),
        }
    }

    /// Where to insert `new` into the drop-off sequence `drops` (which starts at
    /// `pickup`) so the route grows least, and by how much (travel only: service times
    /// are the same wherever the stop goes). Ties go to the earliest position, so an
    /// order's customer is not pushed back for nothing. The route ends at its last
    /// drop-off: the rider does not return.
    pub fn cheapest_insertion(
        &self,
        pickup: &GeoPoint,
        drops: &[GeoPoint],
        new: &GeoPoint,
    ) -> (usize, u64) {
        let mut best = (drops.len(), u64::MAX);
        for position in 0..=drops.len() {
            let prev = if position == 0 {
                pickup
            } else {
                &drops[position - 1]
            };
            let added = match drops.get(position) {
                Some(next) => (self.travel_ms(prev, new) + self.travel_ms(new, next))
                    .saturating_sub(self.travel_ms(prev, next)),
                None => self.travel_ms(prev, new),
            };
            if added < best.1 {
                best = (position, added);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> GeoPoint {
        GeoPoint::new(31.23, 121.47).unwrap()
    }

    fn model() -> TravelModel {
        TravelModel {
            speed_mps: 5.0,
            pickup_service_ms: 60_000,
            dropoff_service_ms: 120_000,
        }
    }

    #[test]
    fn a_delayed_route_equals_the_route_projected_later() {
        let m = model();
        let from = origin();
        let pickup = from.destination(45.0, 2000.0);
        let drops = [
            pickup.destination(90.0, 1500.0),
            pickup.destination(180.0, 900.0),
        ];
        for ready_ms in [0, 500_000, 700_000, 2_000_000] {
            for by_ms in [0, 30_000, 250_000, 1_000_000] {
                let now = m.project(100_000, &from, &pickup, ready_ms, &drops);
                let later = m.project(100_000 + by_ms, &from, &pickup, ready_ms, &drops);
                assert_eq!(
                    m.delay(&now, by_ms, ready_ms),
                    later,
                    "ready {ready_ms} by {by_ms}"
                );
            }
        }
    }

    #[test]
    fn travel_time_is_distance_over_speed_rounded_up() {
        let a = origin();
        let b = a.destination(90.0, 1000.0);
        let t = model().travel_ms(&a, &b);
        assert!((199_999..=200_001).contains(&t), "{t}");
        assert_eq!(model().travel_ms(&a, &a), 0);
    }

    #[test]
    fn early_rider_waits_for_the_food_and_service_times_count() {
        let m = model();
        let merchant = origin();
        let rider_at = merchant.destination(0.0, 500.0); // 100 s away
        let drop = merchant.destination(90.0, 1000.0); // 200 s from the merchant
        let p = m.project(0, &rider_at, &merchant, 600_000, &[drop]);
        assert!((99_999..=100_001).contains(&p.arrive_ms));
        assert_eq!(p.pickup_ms, 600_000, "the food is not ready before");
        // Depart 30 s after pickup, 200 s ride, handover 60 s into the drop-off service.
        let expected = 600_000 + 30_000 + m.travel_ms(&merchant, &drop) + 60_000;
        assert_eq!(p.dropoff_ms, vec![expected]);
    }

    #[test]
    fn late_rider_picks_up_half_a_service_after_arrival() {
        let m = model();
        let merchant = origin();
        let rider_at = merchant.destination(180.0, 3000.0);
        let p = m.project(1_000, &rider_at, &merchant, 0, &[]);
        assert_eq!(p.pickup_ms, p.arrive_ms + 30_000);
        assert!(p.dropoff_ms.is_empty());
    }

    #[test]
    fn second_drop_off_follows_the_first_after_its_service() {
        let m = model();
        let merchant = origin();
        let d1 = merchant.destination(90.0, 1000.0);
        let d2 = merchant.destination(90.0, 2000.0);
        let p = m.project(0, &merchant, &merchant, 0, &[d1, d2]);
        assert_eq!(
            p.dropoff_ms[1],
            p.dropoff_ms[0] + 60_000 + m.travel_ms(&d1, &d2) + 60_000
        );
    }

    #[test]
    fn cheapest_insertion_puts_a_drop_off_between_its_neighbours() {
        let m = model();
        let merchant = origin();
        let near = merchant.destination(90.0, 1000.0);
        let mid = merchant.destination(90.0, 2000.0);
        let far = merchant.destination(90.0, 3000.0);
        assert_eq!(m.cheapest_insertion(&merchant, &[], &far).0, 0);
        assert_eq!(m.cheapest_insertion(&merchant, &[far], &near).0, 0);
        assert_eq!(m.cheapest_insertion(&merchant, &[near, far], &mid).0, 1);
        assert_eq!(m.cheapest_insertion(&merchant, &[near, mid], &far).0, 2);
        // Inserting on the way costs (almost) nothing.
        assert!(m.cheapest_insertion(&merchant, &[near, far], &mid).1 <= 2);
    }
}
