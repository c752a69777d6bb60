//! Who should own a zone: rendezvous hashing (highest random weight) of the zone over the
//! live nodes (docs/cluster.md, "Zones, leases and fencing"). Every node computes the same
//! answer from the same node list, in any process and on any machine: the hash is FNV-1a
//! with a fixed basis, never std's per-process randomised hasher. Adding a node moves
//! about 1/N of the zones (those it now wins); losing one moves only the zones it won.

use crate::domain::ZoneId;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The 64-bit finaliser of MurmurHash3: FNV-1a alone leaves the high bits of short,
/// similar inputs (node ids differing in a digit) correlated, which skews the spread.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The weight of `node` for `zone`: the node with the highest weight owns the zone.
pub fn weight(zone: ZoneId, node: &str) -> u64 {
    let h = fnv1a(FNV_OFFSET, &u64::from(zone.cell()).to_le_bytes());
    // A separator, so ("ab", "c") and ("a", "bc") style splits cannot collide.
    let h = fnv1a(h, &[0xff]);
    fmix64(fnv1a(h, node.as_bytes()))
}

/// The node that should own `zone` among `nodes` (None when there are none). A tie of
/// weights (astronomically rare) goes to the greater node id, so it too is the same
/// answer everywhere.
pub fn owner<'a, I, S>(zone: ZoneId, nodes: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    nodes
        .into_iter()
        .map(|n| n.as_ref())
        .max_by_key(|n| (weight(zone, n), *n))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{GeoPoint, Zoning};
    use std::collections::BTreeMap;

    /// `n` distinct zones around Shanghai.
    pub(crate) fn zones(n: usize) -> Vec<ZoneId> {
        let zoning = Zoning::new(7).unwrap();
        let mut out = Vec::new();
        let mut i = 0;
        while out.len() < n {
            let p = GeoPoint::new(
                31.0 + (i / 40) as f64 * 0.02,
                121.0 + (i % 40) as f64 * 0.02,
            )
            .unwrap();
            let z = zoning.zone_of(p);
            if !out.contains(&z) {
                out.push(z);
            }
            i += 1;
        }
        out
    }

    fn assign(zones: &[ZoneId], nodes: &[&str]) -> BTreeMap<ZoneId, String> {
        zones
            .iter()
            .map(|z| (*z, owner(*z, nodes.iter().copied()).unwrap().to_string()))
            .collect()
    }

    #[test]
    fn three_nodes_share_300_zones_evenly() {
        let zs = zones(300);
        let nodes = ["node-a", "node-b", "node-c"];
        let owners = assign(&zs, &nodes);
        for n in nodes {
            let count = owners.values().filter(|o| *o == n).count();
            assert!((70..=130).contains(&count), "{n} owns {count} of 300");
        }
    }

    #[test]
    fn adding_a_node_moves_about_a_quarter_and_only_to_it() {
        let zs = zones(300);
        let before = assign(&zs, &["node-a", "node-b", "node-c"]);
        let after = assign(&zs, &["node-a", "node-b", "node-c", "node-d"]);
        let moved: Vec<_> = zs.iter().filter(|z| before[z] != after[z]).collect();
        // 1/4 of 300 is 75.
        assert!((45..=105).contains(&moved.len()), "{} moved", moved.len());
        for z in moved {
            assert_eq!(after[z], "node-d", "a zone moved between old nodes");
        }
    }

    #[test]
    fn removing_a_node_moves_only_its_zones() {
        let zs = zones(300);
        let before = assign(&zs, &["node-a", "node-b", "node-c"]);
        let after = assign(&zs, &["node-a", "node-c"]);
        for z in &zs {
            if before[z] != "node-b" {
                assert_eq!(before[z], after[z], "{z} moved though its owner stayed");
            }
        }
        assert!(after.values().all(|o| o != "node-b"));
    }

    #[test]
    fn the_answer_is_the_same_in_every_process_and_order() {
        // Fixed values: a change of hash (or a per-process seed) breaks every cluster
        // that runs mixed versions, so it must show up here.
        let z = ZoneId::parse("87309a400ffffff").unwrap();
        assert_eq!(weight(z, "node-a"), weight(z, "node-a"));
        assert_eq!(weight(z, "node-a"), 0x60d9_924d_48f1_ec6e);
        let forward = owner(z, ["node-a", "node-b", "node-c"].iter().copied());
        let backward = owner(z, ["node-c", "node-b", "node-a"].iter().copied());
        assert_eq!(forward, backward);
        assert_eq!(owner(z, std::iter::empty::<&str>()), None);
    }
}
