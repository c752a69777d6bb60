//! WGS84 points that cannot hold NaN or out-of-range values, and great-circle distance.

use serde::{Deserialize, Serialize};

/// Mean Earth radius used by geo's haversine, metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "RawPoint")]
pub struct GeoPoint {
    #[cfg_attr(feature = "openapi", schema(minimum = -90, maximum = 90))]
    lat: f64,
    #[cfg_attr(feature = "openapi", schema(minimum = -180, maximum = 180))]
    lon: f64,
}

#[derive(Deserialize)]
struct RawPoint {
    lat: f64,
    lon: f64,
}

impl TryFrom<RawPoint> for GeoPoint {
    type Error = String;
    fn try_from(r: RawPoint) -> Result<Self, String> {
        GeoPoint::new(r.lat, r.lon)
    }
}

impl GeoPoint {
    pub fn new(lat: f64, lon: f64) -> Result<Self, String> {
        if !lat.is_finite() || !lon.is_finite() {
            return Err("lat and lon must be finite numbers".into());
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(format!("lat {lat} is out of range -90..90"));
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(format!("lon {lon} is out of range -180..180"));
        }
        Ok(Self { lat, lon })
    }

    pub fn lat(&self) -> f64 {
        self.lat
    }

    pub fn lon(&self) -> f64 {
        self.lon
    }

    /// Great-circle distance in metres (geo's haversine).
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        use ::geo::{Distance, Haversine, Point};
        Haversine::distance(
            Point::new(self.lon, self.lat),
            Point::new(other.lon, other.lat),
        )
    }

    /// The point on the unit sphere scaled to metres: straight-line (chord) distance in
    /// this space grows monotonically with great-circle distance, everywhere — across the
    /// antimeridian and near the poles — so an R-tree over it finds true nearest riders.
    pub fn to_ecef_m(&self) -> [f64; 3] {
        let (lat, lon) = (self.lat.to_radians(), self.lon.to_radians());
        [
            EARTH_RADIUS_M * lat.cos() * lon.cos(),
            EARTH_RADIUS_M * lat.cos() * lon.sin(),
            EARTH_RADIUS_M * lat.sin(),
        ]
    }

    /// A point `distance_m` away along `bearing_deg` (for simulations and tests).
    pub fn destination(&self, bearing_deg: f64, distance_m: f64) -> GeoPoint {
        use ::geo::{Destination, Haversine, Point};
        let p = Haversine::destination(Point::new(self.lon, self.lat), bearing_deg, distance_m);
        let mut lon = p.x();
        if lon > 180.0 {
            lon -= 360.0;
        } else if lon < -180.0 {
            lon += 360.0;
        }
        GeoPoint::new(p.y().clamp(-90.0, 90.0), lon).expect("destination is a valid point")
    }
}

/// Chord length (metres) that corresponds to an arc of `arc_m` on the sphere.
pub fn chord_for_arc_m(arc_m: f64) -> f64 {
    let half = (arc_m / (2.0 * EARTH_RADIUS_M)).min(std::f64::consts::FRAC_PI_2);
    2.0 * EARTH_RADIUS_M * half.sin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_nan_and_out_of_range() {
        assert!(GeoPoint::new(f64::NAN, 0.0).is_err());
        assert!(GeoPoint::new(0.0, f64::INFINITY).is_err());
        assert!(GeoPoint::new(91.0, 0.0).is_err());
        assert!(GeoPoint::new(0.0, -180.5).is_err());
        assert!(GeoPoint::new(-90.0, 180.0).is_ok());
    }

    #[test]
    fn distance_across_antimeridian_is_short() {
        let a = GeoPoint::new(0.0, 179.999).unwrap();
        let b = GeoPoint::new(0.0, -179.999).unwrap();
        let d = a.distance_m(&b);
        assert!((d - 222.4).abs() < 1.0, "{d}");
    }

    #[test]
    fn chord_matches_ecef_distance() {
        let a = GeoPoint::new(31.23, 121.47).unwrap();
        let b = a.destination(45.0, 5000.0);
        let (pa, pb) = (a.to_ecef_m(), b.to_ecef_m());
        let chord =
            ((pa[0] - pb[0]).powi(2) + (pa[1] - pb[1]).powi(2) + (pa[2] - pb[2]).powi(2)).sqrt();
        assert!((chord - chord_for_arc_m(a.distance_m(&b))).abs() < 0.01);
    }
}
