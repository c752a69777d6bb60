//! Which node holds which zone: a merchant's zone is the H3 cell of its location at the
//! engine's zone resolution, and `{prefix}{z:<cell>}:lease` holds `"<node> <fence>"` while a
//! node owns it (docs/cluster.md). An order lives on its merchant's zone's node.

use super::cluster::{node_index, PREFIX};
use dispatch_actors::domain::{GeoPoint, Zoning};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// `cluster.zone_resolution`'s default, which the run's nodes keep.
const ZONE_RESOLUTION: u8 = 7;

/// The zone (H3 cell, hex) of a point.
pub fn zone_of(lat: f64, lon: f64) -> String {
    let zoning = Zoning::new(ZONE_RESOLUTION).expect("resolution 7 is valid");
    let at = GeoPoint::new(lat, lon).expect("a point inside the city");
    zoning.zone_of(at).to_string()
}

fn lease_key(zone: &str) -> String {
    format!("{PREFIX}{{z:{zone}}}:lease")
}

/// The node id in a lease value `"<node> <fence>"`.
pub fn lease_holder(value: &str) -> Option<&str> {
    value.split_once(' ').map(|(node, _)| node)
}

/// Each zone's holder (node index; None: no lease, or a node that is not ours).
pub fn holders(redis_url: &str, zones: &[String], nodes: usize) -> BTreeMap<String, Option<usize>> {
    let mut out = BTreeMap::new();
    let conn = redis::Client::open(redis_url).and_then(|c| c.get_connection());
    let Ok(mut conn) = conn else {
        return zones.iter().map(|z| (z.clone(), None)).collect();
    };
    for z in zones {
        let v: Option<String> = redis::cmd("GET")
            .arg(lease_key(z))
            .query(&mut conn)
            .unwrap_or(None);
        let holder = v
            .as_deref()
            .and_then(lease_holder)
            .and_then(|id| node_index(id, nodes));
        out.insert(z.clone(), holder);
    }
    out
}

/// Waits until every zone has a holder and the map has not changed for `stable_for`
/// (the keepers have settled); the map, or None past `timeout`.
pub async fn settled(
    redis_url: &str,
    zones: &[String],
    nodes: usize,
    stable_for: Duration,
    timeout: Duration,
) -> Option<BTreeMap<String, usize>> {
    let t = Instant::now();
    let mut last: Option<(BTreeMap<String, Option<usize>>, Instant)> = None;
    while t.elapsed() < timeout {
        let now = holders(redis_url, zones, nodes);
        let all_held = now.values().all(Option::is_some);
        match &last {
            Some((prev, since)) if *prev == now => {
                if all_held && since.elapsed() >= stable_for {
                    return Some(now.into_iter().filter_map(|(z, h)| Some((z, h?))).collect());
                }
            }
            _ => last = Some((now, Instant::now())),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_and_leases_read_as_the_engine_writes_them() {
        let z = zone_of(31.23, 121.47);
        // A res-7 cell's 15 hex digits start with 87; its own centre lies in it; 6 km away
        // (over four edges of ~1.4 km) is another cell.
        assert_eq!(z.len(), 15);
        assert!(z.starts_with("87"), "{z}");
        let c = dispatch_actors::domain::ZoneId::parse(&z).unwrap().center();
        assert_eq!(zone_of(c.lat(), c.lon()), z);
        assert_ne!(zone_of(31.284, 121.47), z);
        assert_eq!(lease_holder("n2 17"), Some("n2"));
        assert_eq!(lease_holder("garbage"), None);
        assert!(lease_key("87309a").ends_with("{z:87309a}:lease"));
    }
}
