//! Zones: the unit of ownership when several engine nodes share a city (docs/cluster.md).
//! A zone is an H3 cell at one configured resolution; a merchant's zone is the cell of its
//! location, an order's is its merchant's, a rider's the cell of its latest accepted fix.

use super::GeoPoint;
use h3o::{CellIndex, LatLng, Resolution};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One zone: an H3 cell index. Shown (and stored) as the cell's 15 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ZoneId(CellIndex);

impl ZoneId {
    /// Parses the hex form (`872a1072bffffff`).
    pub fn parse(s: &str) -> Result<Self, String> {
        s.parse::<CellIndex>()
            .map(ZoneId)
            .map_err(|e| format!("{s:?} is not a zone (an H3 cell in hex): {e}"))
    }

    /// The hash tag of this zone's keys in Redis: every key of one zone sits in one slot.
    pub fn tag(&self) -> String {
        format!("z:{}", self)
    }

    pub fn cell(&self) -> CellIndex {
        self.0
    }

    /// The centre of the zone's cell.
    pub fn center(&self) -> GeoPoint {
        let ll = LatLng::from(self.0);
        GeoPoint::new(ll.lat(), ll.lng()).expect("an H3 cell centre is a valid point")
    }
}

impl fmt::Display for ZoneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

impl fmt::Debug for ZoneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZoneId({self})")
    }
}

impl TryFrom<String> for ZoneId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ZoneId::parse(&s)
    }
}

impl From<ZoneId> for String {
    fn from(z: ZoneId) -> String {
        z.to_string()
    }
}

/// How points map to zones: the H3 resolution every node of a deployment shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zoning {
    resolution: Resolution,
}

impl Zoning {
    /// `resolution` 0 (continents) to 15 (a square metre); the default 7 gives cells of
    /// about 5 km² with edges of about 1.4 km.
    pub fn new(resolution: u8) -> Result<Self, String> {
        Resolution::try_from(resolution)
            .map(|resolution| Zoning { resolution })
            .map_err(|_| format!("zone resolution {resolution} is not 0..=15"))
    }

    /// The zone a point stands in.
    pub fn zone_of(&self, at: GeoPoint) -> ZoneId {
        let ll = LatLng::new(at.lat(), at.lon()).expect("a GeoPoint is a valid coordinate");
        ZoneId(ll.to_cell(self.resolution))
    }

    /// Mean edge length of this resolution's cells, metres.
    pub fn edge_length_m(&self) -> f64 {
        self.resolution.edge_length_m()
    }

    /// Every zone that may hold a point within `radius_m` of `at`: the search for riders
    /// near a zone's border looks into these. A superset (whole rings of cells), never
    /// missing one: a ring of k cells reaches at least k·1.5 edges from the centre cell's
    /// edge, and the centre cell reaches one edge past `at` at most.
    pub fn zones_within(&self, at: GeoPoint, radius_m: f64) -> Vec<ZoneId> {
        let edge_m = self.edge_length_m().max(1.0);
        let k = ((radius_m.max(0.0) / edge_m).ceil() as u32).saturating_add(1);
        let centre = self.zone_of(at).0;
        centre
            .grid_disk::<Vec<_>>(k)
            .into_iter()
            .map(ZoneId)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint::new(lat, lon).unwrap()
    }

    #[test]
    fn parse_and_display_round_trip() {
        let z = Zoning::new(7).unwrap().zone_of(p(31.2304, 121.4737));
        let s = z.to_string();
        assert_eq!(s.len(), 15);
        assert_eq!(ZoneId::parse(&s).unwrap(), z);
        assert_eq!(z.tag(), format!("z:{s}"));
        assert!(ZoneId::parse("not-a-cell").is_err());
        assert!(ZoneId::parse("").is_err());
    }

    #[test]
    fn nearby_points_share_a_zone_far_ones_do_not() {
        let zoning = Zoning::new(7).unwrap();
        let a = zoning.zone_of(p(31.2304, 121.4737));
        let b = zoning.zone_of(p(31.2305, 121.4738));
        let far = zoning.zone_of(p(31.3304, 121.4737));
        assert_eq!(a, b);
        assert_ne!(a, far);
        // The centre of a zone is in it.
        assert_eq!(zoning.zone_of(a.center()), a);
    }

    #[test]
    fn resolution_is_checked() {
        assert!(Zoning::new(15).is_ok());
        assert!(Zoning::new(16).is_err());
    }

    #[test]
    fn zones_within_cover_every_point_in_the_radius() {
        let zoning = Zoning::new(8).unwrap();
        let at = p(31.2304, 121.4737);
        let radius_m = 3000.0;
        let zones = zoning.zones_within(at, radius_m);
        // Points on rings around `at`, every 10 degrees, out to the radius.
        for step in 1..=10 {
            let r = radius_m * step as f64 / 10.0;
            for deg in (0..360).step_by(10) {
                let b = (deg as f64).to_radians();
                let dlat = r * b.cos() / 111_320.0;
                let dlon = r * b.sin() / (111_320.0 * at.lat().to_radians().cos());
                let q = p(at.lat() + dlat, at.lon() + dlon);
                assert!(
                    zones.contains(&zoning.zone_of(q)),
                    "{r} m at {deg} degrees is outside the zones found"
                );
            }
        }
        // Radius 0 still gives the zone itself and its neighbours.
        assert!(zoning.zones_within(at, 0.0).contains(&zoning.zone_of(at)));
    }
}
