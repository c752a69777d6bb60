//! The riders of other nodes, as this node's dashboards show them (docs/cluster.md, "The
//! whole city on every socket"): the latest view of each, as its node sent it
//! (`dispatch_actors::actors::roster`), with the node it lives on.
//!
//! Bounded: a node that leaves takes its riders out; past the cap a rider not held yet
//! is not kept (dashboards still get its changes in `updates`, snapshots miss it) and the
//! caller counts it. A city has far fewer riders; the cap only bounds a fault.

use dispatch_actors::domain::rider::RiderView;
use dispatch_actors::domain::RiderId;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// How many riders of other nodes one node keeps for its dashboards' snapshots.
pub const RIDERS_ELSEWHERE_CAP: usize = 200_000;

pub struct RiderViewsElsewhere {
    cap: usize,
    riders: HashMap<RiderId, (Arc<RiderView>, Arc<str>)>,
}

impl Default for RiderViewsElsewhere {
    fn default() -> Self {
        RiderViewsElsewhere::new(RIDERS_ELSEWHERE_CAP)
    }
}

impl RiderViewsElsewhere {
    pub fn new(cap: usize) -> Self {
        RiderViewsElsewhere {
            cap: cap.max(1),
            riders: HashMap::new(),
        }
    }

    /// Keeps the latest view of a rider whose actor lives on `node` (the last node to
    /// speak of a rider is where its actor went). False: a new rider over the cap.
    pub fn put(&mut self, view: Arc<RiderView>, node: Arc<str>) -> bool {
        if self.riders.len() >= self.cap && !self.riders.contains_key(&view.rider_id) {
            return false;
        }
        self.riders.insert(view.rider_id.clone(), (view, node));
        true
    }

    /// The rider's actor is on this node now: its own view is the one to show.
    pub fn forget(&mut self, id: &RiderId) {
        self.riders.remove(id);
    }

    /// `node` left: its riders go (they come back with their actors' next node).
    /// Returns how many went.
    pub fn forget_node(&mut self, node: &str) -> usize {
        let before = self.riders.len();
        self.riders.retain(|_, (_, n)| &**n != node);
        before - self.riders.len()
    }

    pub fn riders(&self) -> Vec<Arc<RiderView>> {
        self.riders.values().map(|(v, _)| v.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.riders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.riders.is_empty()
    }
}

/// A snapshot's riders: `here` (this node's actors), then those of `elsewhere` not among
/// them (a rider whose actor came here is listed once, from its actor).
pub fn riders_with_elsewhere(
    mut here: Vec<RiderView>,
    elsewhere: impl IntoIterator<Item = Arc<RiderView>>,
) -> Vec<RiderView> {
    let ids: HashSet<RiderId> = here.iter().map(|r| r.rider_id.clone()).collect();
    here.extend(
        elsewhere
            .into_iter()
            .filter(|r| !ids.contains(&r.rider_id))
            .map(|r| (*r).clone()),
    );
    here
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use dispatch_actors::domain::rider::RiderStatus;
    use dispatch_actors::domain::GeoPoint;

    pub(crate) fn rider(id: &str, status: RiderStatus) -> Arc<RiderView> {
        Arc::new(RiderView {
            rider_id: RiderId::parse(id).unwrap(),
            name: "Ana".into(),
            location: Some(GeoPoint::new(31.23, 121.47).unwrap()),
            status,
            order_ids: Vec::new(),
            last_seen_ms: Some(1),
            offer: None,
        })
    }

    #[test]
    fn the_latest_view_per_rider_bounded_and_a_leaving_node_takes_its_riders() {
        let mut m = RiderViewsElsewhere::new(2);
        let (a, b) = (Arc::<str>::from("a"), Arc::<str>::from("b"));
        assert!(m.put(rider("r_1", RiderStatus::Idle), a.clone()));
        assert!(m.put(rider("r_1", RiderStatus::Busy), a.clone()));
        assert!(m.put(rider("r_2", RiderStatus::Idle), b.clone()));
        assert!(
            !m.put(rider("r_3", RiderStatus::Idle), b.clone()),
            "over the cap"
        );
        // A rider held is updated at the cap; its actor moved to b.
        assert!(m.put(rider("r_1", RiderStatus::Offline), b.clone()));
        assert_eq!(m.len(), 2);
        assert_eq!(m.forget_node("a"), 0, "r_1 lives on b now");
        assert_eq!(m.forget_node("b"), 2);
        assert!(m.is_empty());
        m.put(rider("r_1", RiderStatus::Idle), a);
        m.forget(&RiderId::parse("r_1").unwrap());
        assert!(m.is_empty());
    }

    #[test]
    fn a_snapshot_lists_a_rider_once_and_its_local_view_wins() {
        let here = vec![(*rider("r_1", RiderStatus::Busy)).clone()];
        let all = riders_with_elsewhere(
            here,
            [
                rider("r_1", RiderStatus::Idle),
                rider("r_2", RiderStatus::Idle),
            ],
        );
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].status, RiderStatus::Busy);
        assert_eq!(all[1].rider_id.as_str(), "r_2");
    }
}
