//! Part (c) of the ingest bench: the MatcherActor on its own Arbiter, as the engine starts
//! it, fed `UpsertRider` by `try_send` at `UPDATES_PER_S` from one task while another times
//! query round trips. Both tasks share the System's thread and hand it to each other with
//! `yield_now` between steps, so updates leave at their paced times rather than in bursts
//! of a timer tick (tokio's timers tick in milliseconds: 50 updates at once).

use super::common::{spread, Spread};
use super::moves::Moves;
use super::{Sizes, K, RADIUS_M, UPDATES_PER_S};
use actix::dev::SendError;
use actix::prelude::*;
use dispatch_actors::actors::matcher::{
    FindCandidates, FindNearestRiders, MatcherActor, UpsertRider,
};
use dispatch_actors::domain::{GeoPoint, OrderId, RiderId};
use futures_util::future::join_all;
use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Instant;

/// Query round trips per second: a busy city's offer rounds and dispatcher views, and
/// enough samples in 5 s.
pub const QUERIES_PER_S: f64 = 2_000.0;

/// Round trips of one phase, by message.
pub struct Trips {
    candidates: Spread,
    nearby: Spread,
    done: usize,
    seconds: f64,
}

#[derive(Default)]
struct Sent {
    sent: u64,
    dropped_full: u64,
    failed_closed: u64,
    seconds: f64,
}

pub struct ActorRun {
    load_s: f64,
    riders: usize,
    quiet: Trips,
    busy: Trips,
    sent: Sent,
}

impl ActorRun {
    pub fn print(&self) {
        println!(
            "  {} riders loaded by UpsertRider (send, awaited in chunks) in {:.2} s",
            self.riders, self.load_s
        );
        println!(
            "  no ingest: {} round trips in {:.2} s",
            self.quiet.done, self.quiet.seconds
        );
        println!(
            "    FindCandidates round trip:    {}",
            self.quiet.candidates.show_ns()
        );
        println!(
            "    FindNearestRiders round trip: {}",
            self.quiet.nearby.show_ns()
        );
        println!(
            "  with UpsertRider by try_send: {} round trips in {:.2} s; {} updates sent in {:.2} s ({:.0}/s), {} dropped (mailbox full), {} failed (closed)",
            self.busy.done,
            self.busy.seconds,
            self.sent.sent,
            self.sent.seconds,
            self.sent.sent as f64 / self.sent.seconds.max(1e-9),
            self.sent.dropped_full,
            self.sent.failed_closed
        );
        println!(
            "    FindCandidates round trip:    {}",
            self.busy.candidates.show_ns()
        );
        println!(
            "    FindNearestRiders round trip: {}",
            self.busy.nearby.show_ns()
        );
    }
}

pub fn run(riders: &[(RiderId, GeoPoint, bool)], queries: &[GeoPoint], sizes: &Sizes) -> ActorRun {
    let riders = riders.to_vec();
    let queries = queries.to_vec();
    let n = sizes.actor_queries;
    System::new().block_on(async move {
        let arbiter = Arbiter::new();
        let matcher = MatcherActor::start_in_arbiter(&arbiter.handle(), |ctx| {
            MatcherActor::with_mailbox(
                ctx,
                dispatch_actors::matcher::INDEX_SLACK_M,
                Default::default(),
            )
        });

        let t = Instant::now();
        for chunk in riders.chunks(4096) {
            join_all(chunk.iter().map(|(id, at, available)| {
                matcher.send(UpsertRider {
                    rider_id: id.clone(),
                    point: *at,
                    available: *available,
                    busy_until: None,
                    shift_end_ms: None,
                })
            }))
            .await;
        }
        let load_s = t.elapsed().as_secs_f64();

        let quiet = round_trips(&matcher, &queries, n).await;

        let stop = Rc::new(Cell::new(false));
        let updater = actix::spawn(send_updates(matcher.clone(), riders.clone(), stop.clone()));
        let busy = round_trips(&matcher, &queries, n).await;
        stop.set(true);
        let sent = updater.await.expect("the update task");
        arbiter.stop();
        ActorRun {
            load_s,
            riders: riders.len(),
            quiet,
            busy,
            sent,
        }
    })
}

/// Yields to the other task until `at`.
async fn until(at: Instant) {
    while Instant::now() < at {
        tokio::task::yield_now().await;
    }
}

/// `n` round trips at `QUERIES_PER_S`, FindCandidates and FindNearestRiders in turn.
async fn round_trips(matcher: &Addr<MatcherActor>, queries: &[GeoPoint], n: usize) -> Trips {
    let order_id = OrderId::parse("o_bench").unwrap();
    let mut candidates = Vec::with_capacity(n / 2 + 1);
    let mut nearby = Vec::with_capacity(n / 2 + 1);
    let start = Instant::now();
    // A matcher that falls behind answers each query after a full mailbox of updates:
    // past three times the planned length the phase stops, with what it has.
    let deadline = start + std::time::Duration::from_secs_f64(3.0 * n as f64 / QUERIES_PER_S);
    for i in 0..n {
        if Instant::now() > deadline {
            break;
        }
        until(start + std::time::Duration::from_secs_f64(i as f64 / QUERIES_PER_S)).await;
        let at = queries[i % queries.len()];
        let t = Instant::now();
        if i % 2 == 0 {
            let found = matcher
                .send(FindCandidates {
                    order_id: order_id.clone(),
                    since_ms: 0,
                    at,
                    k: K,
                    radius_m: RADIUS_M,
                    exclude: HashSet::new(),
                })
                .await
                .expect("the matcher answers");
            candidates.push(t.elapsed().as_nanos() as u64);
            assert!(!found.is_empty(), "a city this dense has riders in reach");
        } else {
            matcher
                .send(FindNearestRiders {
                    at,
                    limit: K,
                    radius_m: RADIUS_M,
                })
                .await
                .expect("the matcher answers");
            nearby.push(t.elapsed().as_nanos() as u64);
        }
    }
    Trips {
        done: candidates.len() + nearby.len(),
        seconds: start.elapsed().as_secs_f64(),
        candidates: spread(candidates),
        nearby: spread(nearby),
    }
}

/// Sends position updates at `UPDATES_PER_S` by `try_send` until told to stop.
async fn send_updates(
    matcher: Addr<MatcherActor>,
    riders: Vec<(RiderId, GeoPoint, bool)>,
    stop: Rc<Cell<bool>>,
) -> Sent {
    let mut moves = Moves::new(&riders, 11);
    let mut s = Sent::default();
    let start = Instant::now();
    while !stop.get() {
        let due = (start.elapsed().as_secs_f64() * UPDATES_PER_S) as u64;
        while s.sent < due {
            let (i, at) = moves.next();
            let (id, _, available) = &riders[i];
            match matcher.try_send(UpsertRider {
                rider_id: id.clone(),
                point: at,
                available: *available,
                busy_until: None,
                shift_end_ms: None,
            }) {
                Ok(()) => {}
                Err(SendError::Full(_)) => s.dropped_full += 1,
                Err(SendError::Closed(_)) => s.failed_closed += 1,
            }
            s.sent += 1;
        }
        tokio::task::yield_now().await;
    }
    s.seconds = start.elapsed().as_secs_f64();
    s
}
