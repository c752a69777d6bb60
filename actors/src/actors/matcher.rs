//! The matcher actor: owns the rider R-tree. It runs on its own Arbiter in production so a
//! flood of GPS updates never stalls HTTP workers or order actors.

use crate::domain::OrderId;
use crate::domain::{GeoPoint, RiderId};
use crate::matcher::feed::{Change, MatcherFeed};
use crate::matcher::{Nearby, Placement, RiderIndex};
use crate::metric_names;
use crate::waiting::{Waiting, WaitingOrders};
use actix::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Messages the matcher may have queued (queries wait their turn past it; riders' changes
/// do not queue here but in the feed).
pub const MAILBOX_CAPACITY: usize = 16_384;

/// Restored riders held back before they are placed at least (see `restoring`).
const RESTORE_BATCH: usize = 16_384;

#[derive(Default)]
pub struct MatcherActor {
    index: RiderIndex,
    /// Riders' changes waiting; drained on `DrainFeed` and before every query.
    feed: Arc<MatcherFeed>,
    /// The last drain's changes (kept for its allocation).
    drained: Vec<Change>,
    waiting: WaitingOrders,
    /// Riders a restart restored, not placed yet: placed in bulk once they are as many as
    /// the index holds (so a city arriving in chunks is bulk-loaded a handful of times,
    /// not inserted one by one), and before any query, so that every query sees them. An
    /// update or removal of one of them meanwhile applies to its entry here.
    restoring: HashMap<RiderId, Placement>,
    /// Riders removed by their own change before their restored entry arrived: that entry
    /// is older than the removal and is dropped when it comes. (A rider only asks to be
    /// removed from a matcher it believes holds it, so an unknown rider's removal is a
    /// restored rider's, and its entry comes once: the set does not grow.)
    gone: HashSet<RiderId>,
}

impl MatcherActor {
    /// A matcher whose mailbox takes `MAILBOX_CAPACITY` messages from the first one on.
    /// Riders' changes come through `feed` (one `DrainFeed` per batch, so nothing is
    /// dropped); queries (`send`) wait their turn. `index_slack_m`: see
    /// `RiderIndex::with_slack_m`.
    pub fn with_mailbox(
        ctx: &mut Context<Self>,
        index_slack_m: f64,
        feed: Arc<MatcherFeed>,
    ) -> Self {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        Self {
            index: RiderIndex::default().with_slack_m(index_slack_m),
            feed,
            ..Self::default()
        }
    }
}

impl Actor for MatcherActor {
    type Context = Context<Self>;
}

impl MatcherActor {
    /// Applies the riders' changes waiting in the feed, then places the restored riders
    /// still held back: every query sees every change put before it.
    fn catch_up(&mut self) {
        self.drain_feed();
        self.place_restored();
    }

    fn drain_feed(&mut self) {
        let mut changes = std::mem::take(&mut self.drained);
        self.feed.drain_into(&mut changes);
        for change in changes.drain(..) {
            match change {
                Change::Place(p) => self.place(p),
                Change::Remove(id) => self.remove(&id),
            }
        }
        self.drained = changes;
    }

    fn place(&mut self, p: Placement) {
        self.gone.remove(&p.rider_id);
        if let Some(held) = self.restoring.get_mut(&p.rider_id) {
            *held = p;
            return;
        }
        self.index.upsert(&p.rider_id, p.point, p.available);
        self.index.set_busy_until(&p.rider_id, p.busy_until);
        self.index.set_shift_end(&p.rider_id, p.shift_end_ms);
    }

    fn remove(&mut self, rider_id: &RiderId) {
        let held = self.restoring.remove(rider_id).is_some();
        if !self.index.remove(rider_id) && !held {
            self.gone.insert(rider_id.clone());
        }
    }

    /// Places the restored riders still held back.
    fn place_restored(&mut self) {
        if !self.restoring.is_empty() {
            let placed = std::mem::take(&mut self.restoring).into_values().collect();
            self.index.extend(placed);
        }
    }
}

/// The feed has changes waiting (sent by the put that found it empty).
#[derive(Message)]
#[rtype(result = "()")]
pub struct DrainFeed;

impl Handler<DrainFeed> for MatcherActor {
    type Result = ();
    fn handle(&mut self, _: DrainFeed, _: &mut Context<Self>) {
        self.drain_feed();
    }
}

/// Inserts or moves a rider; `available` = may take an offer now (riders' own changes go
/// through the feed; this is the direct way, for tools and tests).
#[derive(Message)]
#[rtype(result = "()")]
pub struct UpsertRider {
    pub rider_id: RiderId,
    pub point: GeoPoint,
    pub available: bool,
    /// A busy rider open to its next job: when and where it will be free.
    pub busy_until: Option<(u64, GeoPoint)>,
    /// When the rider's shift ends, if it said.
    pub shift_end_ms: Option<u64>,
}

/// Every rider recovered after a restart, at once: into an empty matcher they are
/// bulk-loaded (far faster than one insert each, and no update is dropped for a full
/// mailbox, as one `UpsertRider` per rider would be at city scale).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RestoreRiders(pub Vec<UpsertRider>);

#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoveRider {
    pub rider_id: RiderId,
}

/// Candidates for an offer: available riders only, nearest first, less the riders owed to
/// orders that have waited longer, one each (see [`WaitingOrders::withheld`]).
#[derive(Message)]
#[rtype(result = "Vec<Nearby>")]
pub struct FindCandidates {
    pub order_id: OrderId,
    /// When the asking order's dispatch started.
    pub since_ms: u64,
    pub at: GeoPoint,
    pub k: usize,
    pub radius_m: f64,
    pub exclude: HashSet<RiderId>,
}

/// The order found nobody at its widest search and waits for a rider.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WaitForRider {
    pub order_id: OrderId,
    pub waiting: Waiting,
}

/// The order no longer waits (it found riders, was assigned, or left dispatch).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopWaiting(pub OrderId);

/// Any located rider that is online and not stale (the dispatcher's "nearby" view).
#[derive(Message)]
#[rtype(result = "Vec<Nearby>")]
pub struct FindNearestRiders {
    pub at: GeoPoint,
    pub limit: usize,
    pub radius_m: f64,
}

impl Handler<UpsertRider> for MatcherActor {
    type Result = ();
    fn handle(&mut self, m: UpsertRider, _: &mut Context<Self>) {
        self.drain_feed();
        self.place(Placement {
            rider_id: m.rider_id,
            point: m.point,
            available: m.available,
            busy_until: m.busy_until,
            shift_end_ms: m.shift_end_ms,
        });
    }
}

impl Handler<RestoreRiders> for MatcherActor {
    type Result = ();
    fn handle(&mut self, m: RestoreRiders, _: &mut Context<Self>) {
        // Changes riders made since they were restored are newer than the snapshot: those
        // the matcher applied already (a drain asked for by a rider of an earlier chunk
        // can take them before this message) keep their place; those still in the feed
        // are applied over the snapshot below.
        for u in m.0 {
            if self.index.contains(&u.rider_id) || self.gone.remove(&u.rider_id) {
                continue;
            }
            let p = Placement {
                rider_id: u.rider_id,
                point: u.point,
                available: u.available,
                busy_until: u.busy_until,
                shift_end_ms: u.shift_end_ms,
            };
            self.restoring.insert(p.rider_id.clone(), p);
        }
        self.drain_feed();
        if self.restoring.len() >= self.index.len().max(RESTORE_BATCH) {
            self.place_restored();
        }
    }
}

impl Handler<RemoveRider> for MatcherActor {
    type Result = ();
    fn handle(&mut self, m: RemoveRider, _: &mut Context<Self>) {
        self.drain_feed();
        self.remove(&m.rider_id);
    }
}

impl Handler<FindCandidates> for MatcherActor {
    type Result = MessageResult<FindCandidates>;
    fn handle(&mut self, m: FindCandidates, _: &mut Context<Self>) -> Self::Result {
        self.catch_up();
        metrics::counter!(metric_names::MATCHER_QUERIES_TOTAL, "kind" => "candidates").increment(1);
        if self.waiting.is_empty() {
            return MessageResult(self.index.nearest(m.at, m.k, m.radius_m, true, &m.exclude));
        }
        // Look a little deeper: some of the nearest may be owed to older orders.
        let found = self
            .index
            .nearest(m.at, m.k.saturating_mul(3), m.radius_m, true, &m.exclude);
        let points: Vec<(&RiderId, GeoPoint)> =
            found.iter().map(|n| (&n.rider_id, n.location)).collect();
        let withheld = self.waiting.withheld(&points, &m.order_id, m.since_ms);
        let held = withheld.iter().filter(|&&w| w).count();
        if held > 0 {
            metrics::counter!(metric_names::MATCHER_WITHHELD_TOTAL).increment(held as u64);
        }
        let out = found
            .into_iter()
            .zip(withheld)
            .filter(|(_, held)| !held)
            .map(|(n, _)| n)
            .take(m.k)
            .collect();
        MessageResult(out)
    }
}

impl Handler<WaitForRider> for MatcherActor {
    type Result = ();
    fn handle(&mut self, m: WaitForRider, _: &mut Context<Self>) {
        self.waiting.wait(m.order_id, m.waiting);
        metrics::gauge!(metric_names::ORDERS_WAITING).set(self.waiting.len() as f64);
    }
}

impl Handler<StopWaiting> for MatcherActor {
    type Result = ();
    fn handle(&mut self, m: StopWaiting, _: &mut Context<Self>) {
        self.waiting.done(&m.0);
        metrics::gauge!(metric_names::ORDERS_WAITING).set(self.waiting.len() as f64);
    }
}

impl Handler<FindNearestRiders> for MatcherActor {
    type Result = MessageResult<FindNearestRiders>;
    fn handle(&mut self, m: FindNearestRiders, _: &mut Context<Self>) -> Self::Result {
        self.catch_up();
        metrics::counter!(metric_names::MATCHER_QUERIES_TOTAL, "kind" => "nearby").increment(1);
        MessageResult(
            self.index
                .nearest(m.at, m.limit, m.radius_m, false, &HashSet::new()),
        )
    }
}

/// One order's search in a planning round.
#[derive(Debug, Clone)]
pub struct CandidateQuery {
    pub at: GeoPoint,
    pub k: usize,
    pub radius_m: f64,
    pub exclude: HashSet<RiderId>,
}

/// Candidates for many orders at once (a planning round): available riders, nearest first,
/// one list per query in the same order.
#[derive(Message)]
#[rtype(result = "Vec<Vec<Nearby>>")]
pub struct FindCandidatesBatch(pub Vec<CandidateQuery>);

impl Handler<FindCandidatesBatch> for MatcherActor {
    type Result = MessageResult<FindCandidatesBatch>;
    fn handle(&mut self, m: FindCandidatesBatch, _: &mut Context<Self>) -> Self::Result {
        self.catch_up();
        metrics::counter!(metric_names::MATCHER_QUERIES_TOTAL, "kind" => "plan").increment(1);
        MessageResult(batch_nearest(&self.index, &m.0))
    }
}

/// One R-tree search per distinct place and radius (the orders of one merchant share
/// both), deep enough for every order's own exclusions, then each order's list cut from
/// it: a round's cost follows the merchants with waiting orders, not the backlog. Public
/// for the planning-round bench (benches/planner_round.rs), which runs a round without
/// actors.
pub fn batch_nearest(
    index: &crate::matcher::RiderIndex,
    queries: &[CandidateQuery],
) -> Vec<Vec<Nearby>> {
    let none = HashSet::new();
    let mut searched: HashMap<(u64, u64, u64), Vec<Nearby>> = HashMap::new();
    let key = |q: &CandidateQuery| {
        (
            q.at.lat().to_bits(),
            q.at.lon().to_bits(),
            q.radius_m.to_bits(),
        )
    };
    let mut depth: HashMap<(u64, u64, u64), usize> = HashMap::new();
    for q in queries {
        let d = depth.entry(key(q)).or_insert(0);
        *d = (*d).max(q.k + q.exclude.len());
    }
    queries
        .iter()
        .map(|q| {
            let k = key(q);
            let found = searched
                .entry(k)
                .or_insert_with(|| index.nearest(q.at, depth[&k], q.radius_m, true, &none));
            found
                .iter()
                .filter(|n| !q.exclude.contains(&n.rider_id))
                .take(q.k)
                .cloned()
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After a restart a rider's own change can reach the matcher before the rider's
    /// restored entry (a drain asked for by a rider of an earlier chunk takes it): the
    /// older entry must not undo it, or the matcher holds the rider where (and as) it was
    /// until its next change, and holds a rider that went away.
    #[actix_rt::test]
    async fn a_restored_entry_does_not_undo_a_riders_newer_change() {
        let feed = Arc::new(MatcherFeed::default());
        let f = feed.clone();
        let matcher = MatcherActor::create(move |ctx| MatcherActor::with_mailbox(ctx, 0.0, f));
        let at = GeoPoint::new(31.23, 121.47).unwrap();
        let rid = |i: usize| RiderId::parse(&format!("r_{i}")).unwrap();
        let (moved, left, quiet) = (rid(1), rid(2), rid(3));
        let _ = feed.put(Change::Place(Placement {
            rider_id: moved.clone(),
            point: at.destination(0.0, 500.0),
            available: true,
            busy_until: None,
            shift_end_ms: None,
        }));
        let _ = feed.put(Change::Remove(left.clone()));
        matcher.send(DrainFeed).await.unwrap();
        let restored = |id: &RiderId, available| UpsertRider {
            rider_id: id.clone(),
            point: at,
            available,
            busy_until: None,
            shift_end_ms: None,
        };
        matcher
            .send(RestoreRiders(vec![
                restored(&moved, false),
                restored(&left, true),
                restored(&quiet, true),
            ]))
            .await
            .unwrap();
        let near = matcher
            .send(FindNearestRiders {
                at,
                limit: 10,
                radius_m: 5_000.0,
            })
            .await
            .unwrap();
        let seen: Vec<(RiderId, i64, bool)> = near
            .iter()
            .map(|n| (n.rider_id.clone(), n.distance_m.round() as i64, n.available))
            .collect();
        assert_eq!(seen, vec![(quiet, 0, true), (moved, 500, true)]);
    }

    #[test]
    fn a_batch_answers_as_one_search_per_query_would() {
        let at = GeoPoint::new(31.23, 121.47).unwrap();
        let rid = |i: usize| RiderId::parse(&format!("r_{i}")).unwrap();
        let mut index = RiderIndex::default();
        for i in 0..60 {
            let p = at.destination((i * 37 % 360) as f64, 50.0 + 40.0 * i as f64);
            index.upsert(&rid(i), p, i % 4 != 0);
        }
        let other = at.destination(90.0, 900.0);
        let q = |at: GeoPoint, k: usize, exclude: &[usize]| CandidateQuery {
            at,
            k,
            radius_m: 2000.0,
            exclude: exclude.iter().map(|&i| rid(i)).collect(),
        };
        // Three orders of one merchant with different decliners, one elsewhere.
        let queries = vec![
            q(at, 5, &[]),
            q(at, 5, &[1, 2, 3, 5, 6]),
            q(at, 3, &[2]),
            q(other, 4, &[7]),
        ];
        let got = batch_nearest(&index, &queries);
        for (query, got) in queries.iter().zip(&got) {
            let want = index.nearest(query.at, query.k, query.radius_m, true, &query.exclude);
            let ids = |v: &[Nearby]| v.iter().map(|n| n.rider_id.clone()).collect::<Vec<_>>();
            assert_eq!(ids(got), ids(&want));
        }
        assert!(got[1].iter().all(|n| n.rider_id != rid(1)));
    }
}
