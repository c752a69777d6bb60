//! Rider changes on their way to the matcher: the latest per rider, taken in one go.
//!
//! A message per change woke the matcher's thread once per GPS fix: at ~47k fixes/s,
//! thread switches and the eventfd writes that cause them were ~30 % of the server's CPU
//! (docs/performance.md, "Where a fix's CPU goes"). Riders put their change here instead,
//! and only the put that finds the feed empty asks the matcher to drain it: under load one
//! wake-up carries many changes. A rider's newer change replaces its older one still
//! waiting (each carries the rider's whole entry), so the feed holds at most one entry per
//! rider and drops nothing. Changes are taken in the order riders first put them, so a
//! replay places riders in the same order every run.

use super::Placement;
use crate::domain::RiderId;
use parking_lot::Mutex;
use std::collections::HashMap;

/// What the matcher should hold for a rider.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "change", content = "rider", rename_all = "snake_case")]
pub enum Change {
    Place(Placement),
    Remove(RiderId),
}

impl Change {
    pub fn rider_id(&self) -> &RiderId {
        match self {
            Change::Place(p) => &p.rider_id,
            Change::Remove(id) => id,
        }
    }
}

#[derive(Default)]
pub struct MatcherFeed {
    inner: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    /// In the order riders first put a change since the last drain.
    changes: Vec<Change>,
    /// Each waiting rider's place in `changes`.
    at: HashMap<RiderId, usize>,
}

impl MatcherFeed {
    /// Puts a rider's change, replacing its earlier one still waiting. True when the feed
    /// was empty: the caller then asks the matcher to drain it (once per batch).
    #[must_use = "an empty feed must be followed by a drain request"]
    pub fn put(&self, change: Change) -> bool {
        let mut w = self.inner.lock();
        let was_empty = w.changes.is_empty();
        match w.at.get(change.rider_id()).copied() {
            Some(i) => w.changes[i] = change,
            None => {
                let i = w.changes.len();
                w.at.insert(change.rider_id().clone(), i);
                w.changes.push(change);
            }
        }
        was_empty
    }

    /// Takes every waiting change, oldest rider first, into `out` (emptied first; its
    /// allocation is kept for the next put, so a busy feed does not reallocate).
    pub fn drain_into(&self, out: &mut Vec<Change>) {
        out.clear();
        let mut w = self.inner.lock();
        std::mem::swap(&mut w.changes, out);
        w.at.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.inner.lock().changes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::GeoPoint;

    fn rid(i: usize) -> RiderId {
        RiderId::parse(&format!("r_{i}")).unwrap()
    }

    fn place(i: usize, lat: f64) -> Change {
        Change::Place(Placement {
            rider_id: rid(i),
            point: GeoPoint::new(lat, 10.0).unwrap(),
            available: true,
            busy_until: None,
            shift_end_ms: None,
        })
    }

    #[test]
    fn only_the_first_put_after_a_drain_asks_for_one() {
        let feed = MatcherFeed::default();
        assert!(feed.put(place(1, 1.0)));
        assert!(!feed.put(place(2, 1.0)));
        assert!(!feed.put(place(1, 2.0)));
        let mut out = Vec::new();
        feed.drain_into(&mut out);
        assert!(feed.is_empty());
        assert!(
            feed.put(place(3, 1.0)),
            "empty again: the next put asks again"
        );
    }

    #[test]
    fn a_newer_change_replaces_the_waiting_one_in_its_place() {
        let feed = MatcherFeed::default();
        let _ = feed.put(place(1, 1.0));
        let _ = feed.put(place(2, 1.0));
        let _ = feed.put(place(1, 2.0));
        let _ = feed.put(Change::Remove(rid(2)));
        let _ = feed.put(place(3, 1.0));
        let mut out = vec![place(9, 9.0)];
        feed.drain_into(&mut out);
        assert_eq!(
            out,
            vec![place(1, 2.0), Change::Remove(rid(2)), place(3, 1.0)],
            "one entry per rider, the latest, in first-put order"
        );
        let mut again = Vec::new();
        feed.drain_into(&mut again);
        assert!(again.is_empty(), "a drain takes everything once");
    }
}
