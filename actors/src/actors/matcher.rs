//! The matcher actor: owns the rider R-tree. It runs on its own Arbiter in production so a
//! flood of GPS updates never stalls HTTP workers or order actors.

use crate::domain::{GeoPoint, RiderId};
use crate::matcher::{Nearby, RiderIndex};
use crate::metric_names;
use actix::prelude::*;
use std::collections::HashSet;

#[derive(Default)]
pub struct MatcherActor {
    index: RiderIndex,
}

impl Actor for MatcherActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // GPS floods queue here; a big mailbox beats refusing fixes, and do_send is unbounded
        // anyway. The capacity bounds `send` callers (queries), which wait their turn.
        ctx.set_mailbox_capacity(4096);
    }
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
