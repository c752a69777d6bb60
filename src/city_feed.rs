//! The whole city on every socket (docs/cluster.md): on a node of several, a task reads
//! the event streams of the zones other nodes hold and hands their orders to the hub
//! ([`Hub::order_elsewhere`]), so a dashboard connected to any node shows every order, and
//! a merchant app or a tracking page connected to any node hears of its orders' changes.
//!
//! - **Which zones**: those listed in `{prefix}zones` that this node does not hold (its
//!   own actors tell the hub of their orders already). The list is read again every
//!   [`LIST_EVERY`]; the held set follows the lease keeper.
//! - **Where a zone starts**: at its stream's end when the feed takes it up (at start, when
//!   it is first listed, when this node lets it go), plus the zone's live orders read once
//!   from their records. That is the exact state of the zone, however long ago its orders
//!   changed, rather than a backlog of the stream that may begin mid-order; the version
//!   check of the orders-elsewhere map drops any write read both ways. Orders read from
//!   their records carry no previous status: they reach dashboards, not merchant apps or
//!   tracking pages (those hear of a change, and a record is not one).
//! - **Then**: every `cluster.city_feed_ms` (200 ms) each zone is read after its cursor,
//!   at most [`READ_COUNT`] entries a read (a zone with more reads on at the next round);
//!   entries written by this node are skipped. A read Redis does not answer leaves the
//!   cursor where it was. Entries trimmed from a stream (`store.event_stream_maxlen`)
//!   before they were read are missed; the order shows again with its next change.
//!
//! The per-zone bookkeeping is the plain [`FeedState`]; the task only reads and hands on.

use crate::hub::Hub;
use dispatch_actors::cluster::keeper::HeldZones;
use dispatch_actors::domain::order::{Order, OrderStatus};
use dispatch_actors::domain::ZoneId;
use dispatch_actors::metric_names;
use dispatch_actors::store::redis::{Leases, RedisStore, StoreConn, ZoneEntry};
use futures_util::future::join_all;
use futures_util::{stream, StreamExt};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The `outcome` labels of `dispatch_city_feed_total`.
pub const OUTCOMES: [&str; 4] = ["fed", "own", "bad", "error"];

/// Entries read from one zone's stream at most per read.
pub const READ_COUNT: usize = 512;

/// Zones taken up at once (each reads its live orders' records): a node starting in a
/// city of many zones does not send all those reads in one burst.
const TAKE_UP_AT_ONCE: usize = 16;

/// How often the list of zones is read again (a new merchant's zone is fed from then on).
pub const LIST_EVERY: Duration = Duration::from_secs(2);

/// An order another node wrote, with its status before that write.
#[derive(Debug, Clone, PartialEq)]
pub struct Heard {
    pub order: Arc<Order>,
    /// None for a new order (and for one read from its record at take-up): the hub tells
    /// merchant apps and tracking pages of status changes only when it knows one happened.
    pub previous: Option<OrderStatus>,
}

/// What one stream entry is to this node.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// An order another node wrote: for the hub.
    Fed(Heard),
    /// Written by this node: its own actors told the hub already.
    Own,
    /// Not an order event this node can read (another kind, or data it cannot decode).
    Bad,
}

/// How many entries of a read came out each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub fed: u64,
    pub own: u64,
    pub bad: u64,
}

impl Tally {
    fn count(&self) {
        for (outcome, n) in [("fed", self.fed), ("own", self.own), ("bad", self.bad)] {
            if n > 0 {
                metrics::counter!(metric_names::CITY_FEED_TOTAL, "outcome" => outcome).increment(n);
            }
        }
    }
}

/// The `data` of an `order_changed` entry (its `type` is not needed: the entry has it).
#[derive(Deserialize)]
struct Written {
    order: Order,
    /// Absent or null for a new order.
    #[serde(default)]
    previous_status: Option<OrderStatus>,
}

/// An entry as the order script wrote it: `type` `order_changed`, `data` the whole event
/// (`{"type":"order_changed","order":{…},"previous_status":…}`), `writer` the node. A
/// previous status this node cannot read makes the entry unreadable, like its order: the
/// hub would otherwise tell a change as none (or a new order as an update).
pub fn read_entry(entry: &ZoneEntry, me: &str) -> Read {
    if entry.writer.as_deref() == Some(me) {
        return Read::Own;
    }
    if entry.kind != "order_changed" {
        return Read::Bad;
    }
    match serde_json::from_str::<Written>(&entry.data) {
        Ok(w) => Read::Fed(Heard {
            order: Arc::new(w.order),
            previous: w.previous_status,
        }),
        Err(_) => Read::Bad,
    }
}

/// The zones the feed follows, each with the stream id it has read up to.
#[derive(Debug)]
pub struct FeedState {
    me: String,
    cursors: BTreeMap<ZoneId, String>,
}

impl FeedState {
    pub fn new(me: impl Into<String>) -> FeedState {
        FeedState {
            me: me.into(),
            cursors: BTreeMap::new(),
        }
    }

    /// The zones to follow are those `listed` that this node does not hold: stops
    /// following the others, and returns those not followed yet (to be taken up with
    /// [`FeedState::take_up`]).
    pub fn follow(&mut self, listed: &BTreeSet<ZoneId>, held: &HeldZones) -> Vec<ZoneId> {
        let wanted = |z: &ZoneId| listed.contains(z) && !held.contains_key(z);
        self.cursors.retain(|z, _| wanted(z));
        listed
            .iter()
            .filter(|z| wanted(z) && !self.cursors.contains_key(z))
            .copied()
            .collect()
    }

    /// Follows `zone` from the stream id `end` on.
    pub fn take_up(&mut self, zone: ZoneId, end: String) {
        self.cursors.insert(zone, end);
    }

    /// Each zone followed with the id to read after.
    pub fn cursors(&self) -> Vec<(ZoneId, String)> {
        self.cursors.iter().map(|(z, c)| (*z, c.clone())).collect()
    }

    /// A read of `zone`'s stream: its cursor moves past the last entry, and the orders of
    /// other nodes come out in stream order, each with its previous status. A zone no
    /// longer followed (dropped while its read was out) takes nothing.
    pub fn take(&mut self, zone: ZoneId, entries: &[ZoneEntry]) -> (Vec<Heard>, Tally) {
        let mut tally = Tally::default();
        let mut orders = Vec::new();
        let Some(cursor) = self.cursors.get_mut(&zone) else {
            return (orders, tally);
        };
        if let Some(last) = entries.last() {
            *cursor = last.id.clone();
        }
        for e in entries {
            match read_entry(e, &self.me) {
                Read::Fed(h) => {
                    tally.fed += 1;
                    orders.push(h);
                }
                Read::Own => tally.own += 1,
                Read::Bad => tally.bad += 1,
            }
        }
        (orders, tally)
    }
}

/// Starts the feed; it runs until the returned task is aborted.
pub fn spawn(
    redis: RedisStore,
    leases: Leases<StoreConn>,
    held: watch::Receiver<HeldZones>,
    hub: Arc<Hub>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    actix_web::rt::spawn(run(redis, leases, held, hub, every))
}

fn count_error(e: impl std::fmt::Display, what: &str) {
    metrics::counter!(metric_names::CITY_FEED_TOTAL, "outcome" => "error").increment(1);
    tracing::debug!(error = %e, "city feed: {what} not readable");
}

async fn run(
    redis: RedisStore,
    leases: Leases<StoreConn>,
    held: watch::Receiver<HeldZones>,
    hub: Arc<Hub>,
    every: Duration,
) {
    let mut feed = FeedState::new(redis.node_id());
    let mut listed = BTreeSet::new();
    let mut next_listing = Instant::now();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if Instant::now() >= next_listing {
            match leases.zones().await {
                Ok(zones) => listed = zones,
                Err(e) => count_error(e, "zones"),
            }
            next_listing = Instant::now() + LIST_EVERY;
        }
        // Zones this node let go are taken up afresh (their orders are elsewhere now),
        // zones it took are left to its actors.
        let now_held = held.borrow().clone();
        let new = feed.follow(&listed, &now_held);
        let taken: Vec<_> = stream::iter(new.into_iter().map(|z| take_up(&redis, &hub, z)))
            .buffer_unordered(TAKE_UP_AT_ONCE)
            .collect()
            .await;
        for (zone, end) in taken.into_iter().flatten() {
            feed.take_up(zone, end);
        }
        let reads = feed.cursors().into_iter().map(|(zone, after)| {
            let redis = &redis;
            async move {
                let got = redis.zone_events_after(zone, &after, READ_COUNT).await;
                (zone, got)
            }
        });
        for (zone, got) in join_all(reads).await {
            match got {
                Ok(entries) => {
                    let (heard, tally) = feed.take(zone, &entries);
                    tally.count();
                    for h in heard {
                        hub.order_elsewhere(h.order, h.previous);
                    }
                }
                Err(e) => count_error(e, "a zone's stream"),
            }
        }
    }
}

/// Takes up `zone`: its stream's end first, then its live orders, so nothing written
/// between the two is missed (read twice at worst). None while Redis does not answer: the
/// zone is taken up at a later round.
async fn take_up(redis: &RedisStore, hub: &Hub, zone: ZoneId) -> Option<(ZoneId, String)> {
    let end = match redis.zone_events_end(zone).await {
        Ok(end) => end,
        Err(e) => {
            count_error(e, "a zone's stream end");
            return None;
        }
    };
    match redis.load_zone_orders(zone).await {
        Ok(records) => {
            // Its state, not a change: no previous status, so no notice to merchant
            // apps or tracking pages (a paid order read here is no "new order").
            for rec in records {
                hub.order_elsewhere(Arc::new(rec.order), None);
            }
            Some((zone, end))
        }
        Err(e) => {
            count_error(e, "a zone's live orders");
            None
        }
    }
}

#[cfg(test)]
#[path = "city_feed_tests.rs"]
mod tests;
