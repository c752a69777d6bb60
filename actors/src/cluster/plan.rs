//! What one node does with its leases at one renewal (docs/cluster.md, "Zones, leases and
//! fencing"): plain logic over what the keeper read from Redis, so the rules are tested
//! without Redis and every node applies the same ones.
//!
//! - A zone this node holds (and Redis still shows as its, with the same fence) is renewed
//!   while rendezvous hashing gives it to this node, and released (drain) once it gives it
//!   to another live node, so that node can take it at once instead of after the TTL.
//! - A zone this node holds that Redis shows as free or as someone else's is lost: the
//!   lease lapsed, or another node took it with a higher fence.
//! - A zone this node should own is acquired when its lease is free (never held, released,
//!   or lapsed because its holder died or was cut off). A lease another node holds is left
//!   alone: it is released by a live holder draining, or lapses with a dead one.

use super::owner::owner;
use crate::domain::ZoneId;
use std::collections::{BTreeMap, BTreeSet};

/// A lease as Redis shows it: `"<node> <fence>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub node: String,
    pub fence: u64,
}

impl Holder {
    /// Parses a lease value; None for anything not of the form `"<node> <fence>"`.
    pub fn parse(value: &str) -> Option<Holder> {
        let (node, fence) = value.rsplit_once(' ')?;
        if node.is_empty() {
            return None;
        }
        Some(Holder {
            node: node.to_string(),
            fence: fence.parse().ok()?,
        })
    }

    /// The lease value this holder writes.
    pub fn value(node: &str, fence: u64) -> String {
        format!("{node} {fence}")
    }
}

/// What the keeper read this round.
#[derive(Debug, Clone)]
pub struct View<'a> {
    /// This node's id.
    pub me: &'a str,
    /// Zones worth owning (`{prefix}zones`).
    pub zones: &'a BTreeSet<ZoneId>,
    /// Nodes whose announcement has not lapsed. This node counts as live whatever the
    /// list says: it is the one asking.
    pub live: &'a [String],
    /// The zones this node holds, with the fence it took each with.
    pub held: &'a BTreeMap<ZoneId, u64>,
    /// Every lease Redis shows for the zones above and the held ones (absent: free).
    pub holders: &'a BTreeMap<ZoneId, Holder>,
}

/// The keeper's work for one round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Free leases this node should take (or leases Redis shows as already this node's
    /// that it does not know it holds: an acquire whose answer was lost).
    pub acquire: Vec<ZoneId>,
    /// Held leases to extend, with their fences.
    pub renew: Vec<(ZoneId, u64)>,
    /// Leases to give up (another live node should own them), with their fences.
    pub release: Vec<(ZoneId, u64)>,
    /// Held leases Redis no longer shows as this node's: stop acting on them now.
    pub lost: Vec<ZoneId>,
}

impl View<'_> {
    /// The node that should own `zone`.
    fn owner(&self, zone: ZoneId) -> &str {
        let others = self
            .live
            .iter()
            .map(String::as_str)
            .filter(|n| *n != self.me);
        owner(zone, others.chain(std::iter::once(self.me))).unwrap_or(self.me)
    }

    pub fn plan(&self) -> Plan {
        let mut plan = Plan::default();
        let all: BTreeSet<ZoneId> = self.zones.iter().chain(self.held.keys()).copied().collect();
        for zone in all {
            let ours = self.owner(zone) == self.me;
            let shown = self.holders.get(&zone);
            match (self.held.get(&zone), shown) {
                (Some(&fence), Some(h)) if h.node == self.me && h.fence == fence => {
                    if ours {
                        plan.renew.push((zone, fence));
                    } else {
                        plan.release.push((zone, fence));
                    }
                }
                (Some(_), _) => plan.lost.push(zone),
                (None, None) if ours => plan.acquire.push(zone),
                (None, Some(h)) if h.node == self.me => {
                    if ours {
                        plan.acquire.push(zone);
                    } else {
                        plan.release.push((zone, h.fence));
                    }
                }
                (None, _) => {}
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::owner::tests::zones;

    fn holder(node: &str, fence: u64) -> Holder {
        Holder {
            node: node.into(),
            fence,
        }
    }

    struct World {
        zones: BTreeSet<ZoneId>,
        live: Vec<String>,
        held: BTreeMap<String, BTreeMap<ZoneId, u64>>,
        redis: BTreeMap<ZoneId, Holder>,
        fences: BTreeMap<ZoneId, u64>,
    }

    impl World {
        fn new(n_zones: usize, nodes: &[&str]) -> World {
            World {
                zones: zones(n_zones).into_iter().collect(),
                live: nodes.iter().map(|n| n.to_string()).collect(),
                held: nodes
                    .iter()
                    .map(|n| (n.to_string(), BTreeMap::new()))
                    .collect(),
                redis: BTreeMap::new(),
                fences: BTreeMap::new(),
            }
        }

        fn plan(&self, me: &str) -> Plan {
            View {
                me,
                zones: &self.zones,
                live: &self.live,
                held: &self.held[me],
                holders: &self.redis,
            }
            .plan()
        }

        /// One node's round, applied to Redis the way the scripts would.
        fn round(&mut self, me: &str) -> Plan {
            let plan = self.plan(me);
            let held = self.held.get_mut(me).unwrap();
            for z in &plan.lost {
                held.remove(z);
            }
            for (z, f) in &plan.release {
                if self.redis.get(z) == Some(&holder(me, *f)) {
                    self.redis.remove(z);
                }
                held.remove(z);
            }
            for z in &plan.acquire {
                let fence = match self.redis.get(z) {
                    Some(h) if h.node == me => h.fence,
                    Some(_) => continue,
                    None => {
                        let f = self.fences.entry(*z).or_default();
                        *f += 1;
                        self.redis.insert(*z, holder(me, *f));
                        *f
                    }
                };
                held.insert(*z, fence);
            }
            plan
        }

        fn settle(&mut self) {
            for _ in 0..3 {
                let nodes: Vec<String> = self.live.clone();
                for n in &nodes {
                    self.round(n);
                }
            }
        }

        fn count(&self, me: &str) -> usize {
            self.held[me].len()
        }
    }

    #[test]
    fn a_lease_value_round_trips_and_junk_is_refused() {
        assert_eq!(Holder::parse("n-1 42"), Some(holder("n-1", 42)));
        assert_eq!(
            Holder::parse(&Holder::value("a b", 7)),
            Some(holder("a b", 7))
        );
        for junk in ["", "n-1", "n-1 x", " 4", "n-1 -3"] {
            assert_eq!(Holder::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn nodes_split_the_zones_and_every_zone_has_one_holder() {
        let mut w = World::new(300, &["a", "b", "c"]);
        w.settle();
        assert_eq!(w.redis.len(), 300);
        for n in ["a", "b", "c"] {
            assert!((70..=130).contains(&w.count(n)), "{n}: {}", w.count(n));
        }
        assert_eq!(w.count("a") + w.count("b") + w.count("c"), 300);
        // Settled: every node only renews.
        for n in ["a", "b", "c"] {
            let p = w.plan(n);
            assert_eq!(p.renew.len(), w.count(n));
            assert!(p.acquire.is_empty() && p.release.is_empty() && p.lost.is_empty());
        }
    }

    #[test]
    fn a_joining_node_gets_its_zones_after_their_owners_drain() {
        let mut w = World::new(300, &["a", "b", "c"]);
        w.settle();
        w.live.push("d".into());
        w.held.insert("d".into(), BTreeMap::new());
        // Before anyone drains, d finds its zones held and waits.
        assert!(w.plan("d").acquire.is_empty());
        let released: usize = ["a", "b", "c"]
            .map(|n| w.round(n).release.len())
            .iter()
            .sum();
        assert!((45..=105).contains(&released), "{released} released");
        let taken = w.round("d");
        assert_eq!(taken.acquire.len(), released);
        assert_eq!(w.redis.len(), 300);
    }

    #[test]
    fn a_dead_nodes_zones_go_to_their_new_owners_once_its_leases_lapse() {
        let mut w = World::new(300, &["a", "b", "c"]);
        w.settle();
        let of_b: Vec<ZoneId> = w.held["b"].keys().copied().collect();
        let fences_before: BTreeMap<ZoneId, u64> = w.held["b"].clone();
        w.live.retain(|n| n != "b");
        // b's leases still stand: nobody touches them.
        assert!(w.plan("a").acquire.is_empty() && w.plan("c").acquire.is_empty());
        // They lapse.
        for z in &of_b {
            w.redis.remove(z);
        }
        let a_before = w.held["a"].clone();
        w.settle();
        for z in &of_b {
            let h = &w.redis[z];
            assert!(h.node == "a" || h.node == "c");
            assert!(
                h.fence > fences_before[z],
                "a new holder has a higher fence"
            );
        }
        // a kept everything it had.
        for (z, f) in a_before {
            assert_eq!(w.held["a"].get(&z), Some(&f));
        }
    }

    #[test]
    fn a_lease_shown_as_another_nodes_or_lapsed_is_lost() {
        let mut w = World::new(30, &["a", "b"]);
        w.settle();
        let (&z1, &f1) = w.held["a"].iter().next().unwrap();
        let (&z2, _) = w.held["a"].iter().nth(1).unwrap();
        w.redis.insert(z1, holder("b", f1 + 1));
        w.redis.remove(&z2);
        let p = w.plan("a");
        let mut want = vec![z1, z2];
        want.sort();
        assert_eq!(p.lost, want);
        // The same node with an older fence is lost too: a newer holder of the same id.
        let mut w = World::new(30, &["a", "b"]);
        w.settle();
        let (&z, &f) = w.held["a"].iter().next().unwrap();
        w.redis.insert(z, holder("a", f + 1));
        assert_eq!(w.plan("a").lost, vec![z]);
    }

    #[test]
    fn a_node_alone_takes_every_zone_even_if_the_list_lacks_it() {
        let mut w = World::new(20, &["a"]);
        w.live.clear();
        w.round("a");
        assert_eq!(w.count("a"), 20);
    }

    #[test]
    fn a_lease_already_ours_in_redis_is_adopted_or_released() {
        let mut w = World::new(30, &["a", "b"]);
        w.settle();
        // a lost track of its leases (an answer that never came back).
        let mine = std::mem::take(w.held.get_mut("a").unwrap());
        let p = w.plan("a");
        assert_eq!(p.acquire, mine.keys().copied().collect::<Vec<_>>());
        // And one rendezvous gives to b is released with the fence Redis shows.
        let (&z, _) = w.held["b"].iter().next().unwrap();
        w.redis.insert(z, holder("a", 9));
        w.held.get_mut("b").unwrap().remove(&z);
        assert!(w.plan("a").release.contains(&(z, 9)));
    }
}
