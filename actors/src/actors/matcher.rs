//! The matcher actor: owns the rider R-tree. It runs on its own Arbiter in production so a
//! flood of GPS updates never stalls HTTP workers or order actors.

use crate::domain::{GeoPoint, RiderId};
use crate::matcher::{Nearby, RiderIndex};
use crate::metric_names;
use actix::prelude::*;
use std::collections::HashSet;

/// Messages the matcher may have queued before position updates are dropped.
pub const MAILBOX_CAPACITY: usize = 16_384;

#[derive(Default)]
pub struct MatcherActor {
    index: RiderIndex,
}

impl MatcherActor {
    /// A matcher whose mailbox takes `MAILBOX_CAPACITY` messages from the first one on.
    /// Riders' position updates come with `try_send`: past that many queued messages an
    /// update is dropped and counted (`dispatch_matcher_updates_dropped_total`), and the
    /// rider re-sends its state with its next change. Queries (`send`) wait their turn.
    pub fn with_mailbox(ctx: &mut Context<Self>) -> Self {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        Self::default()
    }
}

impl Actor for MatcherActor {
    type Context = Context<Self>;
}

/// Inserts or moves a rider; `available` = may take an offer now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UpsertRider {
    pub rider_id: RiderId,
    pub point: GeoPoint,
    pub available: bool,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoveRider {
    pub rider_id: RiderId,
}

/// Candidates for an offer: available riders only, nearest first.
#[derive(Message)]
#[rtype(result = "Vec<Nearby>")]
pub struct FindCandidates {
    pub at: GeoPoint,
    pub k: usize,
    pub radius_m: f64,
    pub exclude: HashSet<RiderId>,
}

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
        self.index.upsert(&m.rider_id, m.point, m.available);
    }
}

impl Handler<RemoveRider> for MatcherActor {
    type Result = ();
    fn handle(&mut self, m: RemoveRider, _: &mut Context<Self>) {
        self.index.remove(&m.rider_id);
    }
}

impl Handler<FindCandidates> for MatcherActor {
    type Result = MessageResult<FindCandidates>;
    fn handle(&mut self, m: FindCandidates, _: &mut Context<Self>) -> Self::Result {
        metrics::counter!(metric_names::MATCHER_QUERIES_TOTAL, "kind" => "candidates").increment(1);
        MessageResult(self.index.nearest(m.at, m.k, m.radius_m, true, &m.exclude))
    }
}

impl Handler<FindNearestRiders> for MatcherActor {
    type Result = MessageResult<FindNearestRiders>;
    fn handle(&mut self, m: FindNearestRiders, _: &mut Context<Self>) -> Self::Result {
        metrics::counter!(metric_names::MATCHER_QUERIES_TOTAL, "kind" => "nearby").increment(1);
        MessageResult(
            self.index
                .nearest(m.at, m.limit, m.radius_m, false, &HashSet::new()),
        )
    }
}
