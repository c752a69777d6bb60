//! The whole city on every socket (docs/cluster.md): on a node of several, a task reads
//! the event streams of the zones other nodes hold and hands their orders to the hub
//! ([`Hub::order_elsewhere`]), so a dashboard connected to any node shows every order, and
//! a merchant app or a tracking page connected to any node hears of its orders' changes.
//!
//! - **Which zones**: those listed in `{prefix}zones` that this node does not hold (its
//!   own actors tell the hub of their orders already). The list is read again every
//!   [`LIST_EVERY_ROUNDS`] rounds; the held set follows the lease keeper.
//! - **Where a zone starts** ([`Start`]): the zone's live orders are read once from their
//!   records when the feed takes it up, the exact state of the zone however long ago its
//!   orders changed; they carry no previous status, so they reach dashboards, not merchant
//!   apps or tracking pages (those hear of a change, and a record is not one). The stream
//!   is followed from its end for the zones of the node's first listing (nobody connected
//!   here heard of them before), from its start for a zone listed later (a new merchant's:
//!   its stream is its whole life, so an order paid before the listing is read as a
//!   change and a merchant app here gets its `new_order`), and from this node's own last
//!   entry for a zone this node let go (what the new holder wrote since is told as it
//!   happened). Those changes are handed on before the records, so the version check of
//!   the orders-elsewhere map drops the records' copies of changed orders rather than the
//!   changes (a write read both ways is told once).
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
use dispatch_actors::store::redis::{Leases, RedisStore, StoreConn, ZoneEntry, STREAM_START};
use futures_util::future::join_all;
use futures_util::{stream, StreamExt};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The `outcome` labels of `dispatch_city_feed_total`.
pub const OUTCOMES: [&str; 4] = ["fed", "own", "bad", "error"];

/// Entries read from one zone's stream at most per read.
pub const READ_COUNT: usize = 512;

/// Zones taken up at once (each reads its live orders' records): a node starting in a
/// city of many zones does not send all those reads in one burst.
const TAKE_UP_AT_ONCE: usize = 16;

/// The list of zones is read again every this many rounds (every 2 s at the default
/// 200 ms): a new merchant's zone is fed from then on.
pub const LIST_EVERY_ROUNDS: u32 = 10;

/// Reads of a zone's stream at most when it is taken up (its changes since where it
/// starts); a longer backlog is read on at the next rounds, its changes then shown on
/// dashboards but not told to merchant apps and tracking pages (the records came first).
const TAKE_UP_READS: usize = 8;

/// How far back in a zone's stream this node looks for its own last entry when it lets
/// the zone go.
const OWN_WITHIN: usize = 256;

/// Where the feed starts following a zone's stream when it takes the zone up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At its end: a zone of the node's first listing.
    End,
    /// At its start: a zone listed after the first listing (a new merchant's).
    Beginning,
    /// After this node's own last entry: a zone this node held and let go (at its end if
    /// none of the last entries is this node's).
    AfterOwn,
}

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
    /// Zones to take up, each with where it starts (kept until it is taken up: a zone
    /// Redis did not answer for keeps its start for the next round).
    starting: BTreeMap<ZoneId, Start>,
    /// Every zone listed so far, and whether a listing was seen at all.
    known: BTreeSet<ZoneId>,
    listed_once: bool,
    /// The zones this node held at the last [`FeedState::follow`].
    held_before: BTreeSet<ZoneId>,
    /// Zones this node let go and has not taken up since (it may list a zone only after
    /// it let it go: the list is read every few rounds).
    released: BTreeSet<ZoneId>,
}

impl FeedState {
    pub fn new(me: impl Into<String>) -> FeedState {
        FeedState {
            me: me.into(),
            cursors: BTreeMap::new(),
            starting: BTreeMap::new(),
            known: BTreeSet::new(),
            listed_once: false,
            held_before: BTreeSet::new(),
            released: BTreeSet::new(),
        }
    }

    /// The zones to follow are those `listed` (a listing read from Redis) that this node
    /// does not hold: stops following the others, and returns those not followed yet,
    /// each with where it starts (to be taken up with [`FeedState::take_up`]).
    pub fn follow(&mut self, listed: &BTreeSet<ZoneId>, held: &HeldZones) -> Vec<(ZoneId, Start)> {
        let wanted = |z: &ZoneId| listed.contains(z) && !held.contains_key(z);
        let let_go: Vec<ZoneId> = self
            .held_before
            .iter()
            .filter(|z| !held.contains_key(z))
            .copied()
            .collect();
        self.released.extend(let_go);
        self.released.retain(|z| !held.contains_key(z));
        self.cursors.retain(|z, _| wanted(z));
        self.starting.retain(|z, _| wanted(z));
        for z in listed.iter().filter(|z| wanted(z)) {
            if self.cursors.contains_key(z) || self.starting.contains_key(z) {
                continue;
            }
            let start = if self.released.contains(z) {
                Start::AfterOwn
            } else if self.listed_once && !self.known.contains(z) {
                Start::Beginning
            } else {
                Start::End
            };
            self.starting.insert(*z, start);
        }
        self.known.extend(listed.iter().copied());
        self.listed_once = true;
        self.held_before = held.keys().copied().collect();
        self.starting.iter().map(|(z, s)| (*z, *s)).collect()
    }

    /// Follows `zone` from the stream id `cursor` on.
    pub fn take_up(&mut self, zone: ZoneId, cursor: String) {
        self.starting.remove(&zone);
        self.released.remove(&zone);
        self.cursors.insert(zone, cursor);
    }

    /// Each zone followed with the id to read after.
    pub fn cursors(&self) -> Vec<(ZoneId, String)> {
        self.cursors.iter().map(|(z, c)| (*z, c.clone())).collect()
    }

    /// A read of `zone`'s stream: its cursor moves past the last entry, and the orders of
    /// other nodes come out in stream order, each with its previous status. A zone no
    /// longer followed (dropped while its read was out) takes nothing.
    pub fn take(&mut self, zone: ZoneId, entries: &[ZoneEntry]) -> (Vec<Heard>, Tally) {
        let Some(cursor) = self.cursors.get_mut(&zone) else {
            return (Vec::new(), Tally::default());
        };
        if let Some(last) = entries.last() {
            *cursor = last.id.clone();
        }
        sort_entries(entries, &self.me)
    }
}

/// The orders of other nodes among `entries`, in stream order, and how many came out
/// each way.
fn sort_entries(entries: &[ZoneEntry], me: &str) -> (Vec<Heard>, Tally) {
    let mut tally = Tally::default();
    let mut orders = Vec::new();
    for e in entries {
        match read_entry(e, me) {
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
    // None until the first listing is read: which zones are new depends on it.
    let mut listed: Option<BTreeSet<ZoneId>> = None;
    let mut round: u32 = 0;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if round.is_multiple_of(LIST_EVERY_ROUNDS) {
            match leases.zones().await {
                Ok(zones) => listed = Some(zones),
                Err(e) => count_error(e, "zones"),
            }
        }
        round = round.wrapping_add(1);
        let Some(listed) = &listed else {
            continue;
        };
        // Zones this node let go are taken up afresh (their orders are elsewhere now),
        // zones it took are left to its actors.
        let now_held = held.borrow().clone();
        let new = feed.follow(listed, &now_held);
        let taken: Vec<_> = stream::iter(
            new.into_iter()
                .map(|(z, start)| take_up(&redis, &hub, z, start)),
        )
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

/// Takes up `zone` from `start`: where its stream starts, then its live orders' records,
/// then (unless from the end) the changes since the start, handed on before the records.
/// Every record's write is in the stream before the record is read (the order script
/// writes both at once), so the changes read after the records include them all and
/// nothing is missed (read twice at worst, told once). Returns the stream id to read on
/// after; None while Redis does not answer: the zone is taken up at a later round.
async fn take_up(
    redis: &RedisStore,
    hub: &Hub,
    zone: ZoneId,
    start: Start,
) -> Option<(ZoneId, String)> {
    let me = redis.node_id();
    let cursor = match start {
        Start::Beginning => Ok(STREAM_START.to_string()),
        Start::End => redis.zone_events_end(zone).await,
        Start::AfterOwn => match redis.zone_events_last_by(zone, me, OWN_WITHIN).await {
            Ok(Some(own)) => Ok(own),
            Ok(None) => redis.zone_events_end(zone).await,
            Err(e) => Err(e),
        },
    };
    let mut cursor = match cursor {
        Ok(c) => c,
        Err(e) => {
            count_error(e, "a zone's stream end");
            return None;
        }
    };
    let records = match redis.load_zone_orders(zone).await {
        Ok(records) => records,
        Err(e) => {
            count_error(e, "a zone's live orders");
            return None;
        }
    };
    if start != Start::End {
        for _ in 0..TAKE_UP_READS {
            let entries = match redis.zone_events_after(zone, &cursor, READ_COUNT).await {
                Ok(entries) => entries,
                Err(e) => {
                    // Those handed on already are stale when read again next round.
                    count_error(e, "a zone's stream");
                    return None;
                }
            };
            let (heard, tally) = sort_entries(&entries, me);
            tally.count();
            for h in heard {
                hub.order_elsewhere(h.order, h.previous);
            }
            match entries.last() {
                Some(last) if entries.len() >= READ_COUNT => cursor = last.id.clone(),
                Some(last) => {
                    cursor = last.id.clone();
                    break;
                }
                None => break,
            }
        }
    }
    // Its state, not a change: no previous status, so no notice to merchant apps or
    // tracking pages (a paid order read here is no "new order").
    for rec in records {
        hub.order_elsewhere(Arc::new(rec.order), None);
    }
    Some((zone, cursor))
}

#[cfg(test)]
#[path = "city_feed_tests.rs"]
mod tests;
