//! The matching policy as plain rules: how candidates are ranked, how many offers one order
//! may have open, and what dispatch does when a search finds nobody. The OrderActor asks
//! these questions and acts on the answers (queries, offers, timers).

use crate::config::DispatchConfig;
use crate::matcher::Nearby;

#[derive(Debug, Clone, PartialEq)]
pub struct DispatchPolicy {
    speed_mps: f64,
    initial_radius_m: f64,
    max_radius_m: f64,
    fanout: usize,
}

/// What to do after a search found no candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WhenEmpty {
    /// Search again at once with this (doubled, capped) radius.
    Widen(f64),
    /// At the widest radius with no offer open: riders who only let an offer expire may be
    /// offered again (decliners never are); search again at once.
    ForgiveExpired,
    /// Nobody at all: try again after `dispatch.retry_interval_s`.
    RetryLater,
}

impl DispatchPolicy {
    pub fn new(cfg: &DispatchConfig) -> Self {
        Self {
            speed_mps: cfg.speed_mps.max(0.1),
            initial_radius_m: cfg.initial_radius_m,
            max_radius_m: cfg.max_radius_m.max(cfg.initial_radius_m),
            fanout: cfg.offer_fanout.max(1),
        }
    }

    pub fn initial_radius_m(&self) -> f64 {
        self.initial_radius_m
    }

    /// Estimated travel time to cover `distance_m`.
    pub fn travel_s(&self, distance_m: f64) -> f64 {
        distance_m / self.speed_mps
    }

    /// Candidates in the order they should be offered: shortest travel time to the
    /// merchant first; ties broken by rider id so dispatch is deterministic.
    pub fn rank(&self, mut cands: Vec<Nearby>) -> Vec<Nearby> {
        cands.sort_by(|a, b| {
            self.travel_s(a.distance_m)
                .total_cmp(&self.travel_s(b.distance_m))
                .then_with(|| a.rider_id.cmp(&b.rider_id))
        });
        cands
    }

    /// The candidates who can pick the order up before their shift ends (riders that did
    /// not say when it ends always can): the pickup is no earlier than their arrival
    /// (`now_ms` plus the travel) nor than the food is ready.
    pub fn within_shift(
        &self,
        mut cands: Vec<Nearby>,
        now_ms: u64,
        ready_at_ms: Option<u64>,
    ) -> Vec<Nearby> {
        cands.retain(|c| {
            c.shift_end_ms.is_none_or(|end_ms| {
                let arrive_ms = now_ms + (self.travel_s(c.distance_m) * 1000.0) as u64;
                arrive_ms.max(ready_at_ms.unwrap_or(0)) <= end_ms
            })
        });
        cands
    }

    /// May another offer be opened for an order that has `open` offers?
    pub fn wants_more_offers(&self, open: usize) -> bool {
        open < self.fanout
    }

    /// The search radius after one widening step (doubling, up to the maximum).
    pub fn widened(&self, radius_m: f64) -> f64 {
        (radius_m * 2.0).min(self.max_radius_m)
    }

    pub fn when_empty(
        &self,
        radius_m: f64,
        open_offers: usize,
        expired_riders: usize,
    ) -> WhenEmpty {
        if radius_m < self.max_radius_m {
            WhenEmpty::Widen(self.widened(radius_m))
        } else if open_offers == 0 && expired_riders > 0 {
            WhenEmpty::ForgiveExpired
        } else {
            WhenEmpty::RetryLater
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GeoPoint, RiderId};

    fn policy() -> DispatchPolicy {
        DispatchPolicy::new(&DispatchConfig {
            speed_mps: 5.0,
            initial_radius_m: 3000.0,
            max_radius_m: 20000.0,
            offer_fanout: 2,
            ..Default::default()
        })
    }

    fn cand(id: &str, d: f64) -> Nearby {
        Nearby {
            rider_id: RiderId::parse(id).unwrap(),
            location: GeoPoint::new(0.0, 0.0).unwrap(),
            distance_m: d,
            available: true,
            busy_until: None,
            shift_end_ms: None,
        }
    }

    #[test]
    fn riders_whose_shift_ends_before_the_pickup_are_left_out() {
        let p = policy();
        let mut early = cand("r_early", 100.0);
        let mut late = cand("r_late", 100.0);
        let mut far = cand("r_far", 6000.0);
        early.shift_end_ms = Some(1_000);
        late.shift_end_ms = Some(1_000_000);
        far.shift_end_ms = Some(1_000_000);
        let open = cand("r_open", 100.0);
        let ids = |v: Vec<Nearby>| {
            v.into_iter()
                .map(|c| c.rider_id.to_string())
                .collect::<Vec<_>>()
        };
        // Ready at 600 s: only riders still on shift then, and able to get there.
        let kept = p.within_shift(vec![early, late, far.clone(), open], 0, Some(600_000));
        assert_eq!(ids(kept), vec!["r_late", "r_open"]);
        // Far: 6 km is more than 1,000 s at the policy's speed.
        far.shift_end_ms = Some(10_000_000);
        assert_eq!(ids(p.within_shift(vec![far], 0, None)), vec!["r_far"]);
    }

    #[test]
    fn ranks_by_travel_time_then_id() {
        let p = policy();
        let ranked = p.rank(vec![
            cand("r_c", 900.0),
            cand("r_b", 100.0),
            cand("r_a", 900.0),
        ]);
        let ids: Vec<&str> = ranked.iter().map(|c| c.rider_id.as_str()).collect();
        assert_eq!(ids, vec!["r_b", "r_a", "r_c"]);
        assert_eq!(p.travel_s(100.0), 20.0);
    }

    #[test]
    fn widens_by_doubling_up_to_the_maximum_then_forgives_then_waits() {
        let p = policy();
        assert_eq!(p.when_empty(3000.0, 0, 0), WhenEmpty::Widen(6000.0));
        assert_eq!(p.when_empty(12000.0, 0, 0), WhenEmpty::Widen(20000.0));
        assert_eq!(p.when_empty(20000.0, 0, 2), WhenEmpty::ForgiveExpired);
        assert_eq!(
            p.when_empty(20000.0, 1, 2),
            WhenEmpty::RetryLater,
            "an offer is still open"
        );
        assert_eq!(p.when_empty(20000.0, 0, 0), WhenEmpty::RetryLater);
    }

    #[test]
    fn fanout_caps_open_offers() {
        let p = policy();
        assert!(p.wants_more_offers(0));
        assert!(p.wants_more_offers(1));
        assert!(!p.wants_more_offers(2));
    }
}
