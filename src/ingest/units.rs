//! Speeds as tracking apps send them, converted to the engine's metres per second in this
//! one place: OsmAnd / Traccar Client send knots, OwnTracks km/h, Traccar Client's JSON
//! m/s already.

/// One international knot: 1852 m per hour.
const MPS_PER_KNOT: f64 = 1852.0 / 3600.0;
/// One kilometre per hour.
const MPS_PER_KMH: f64 = 1000.0 / 3600.0;

pub fn knots_to_mps(knots: f64) -> f64 {
    knots * MPS_PER_KNOT
}

pub fn kmh_to_mps(kmh: f64) -> f64 {
    kmh * MPS_PER_KMH
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn knots_are_nautical_miles_per_hour() {
        assert!(close(knots_to_mps(1.0), 0.514_444_444_4));
        // 10 m/s is 19.4384 kn: back and forth agrees.
        assert!(close(knots_to_mps(10.0 / MPS_PER_KNOT), 10.0));
        assert_eq!(knots_to_mps(0.0), 0.0);
    }

    #[test]
    fn kilometres_per_hour() {
        assert!(close(kmh_to_mps(36.0), 10.0));
        assert!(close(kmh_to_mps(54.0), 15.0));
        assert_eq!(kmh_to_mps(0.0), 0.0);
    }
}
