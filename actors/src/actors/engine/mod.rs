//! The engine facade: creates actors, routes calls to them by id, and answers the queries
//! that span many actors. The server's handlers and the tests drive the engine only
//! through this type.

//!
//! - this file: start-up, merchants, riders, escalations;
//! - `orders`: creating orders and the commands and queries on them;
//! - `recover`: rebuilding every actor from a store snapshot after a restart.

mod alerts;
mod handover;
mod orders;
mod peers;
mod recover;
mod tracker;
mod zones;

use super::desk::{EscalationDesk, ListEscalations, Resolve};
use super::directory::{Directory, SharedFixSlot};
use super::matcher::{FindNearestRiders, MatcherActor};
use super::merchant::{AddItem, GetMerchant, MerchantActor, SetOpen, UpdateItem};
use super::planner::PlannerActor;
use super::remote::wire::{Answer, RiderMsg};
use super::rider::RiderActor;
use super::Shared;
use crate::clock::Clock;
use crate::config::{EngineConfig, Policy};
use crate::domain::escalation::Escalation;
use crate::domain::gps::{FixVerdict, RawFix};
use crate::domain::merchant::{
    Item, Merchant, MerchantState, DEFAULT_PREP_TIME_S, MAX_PREP_TIME_S,
};
use crate::domain::rider::{RiderState, RiderView};
use crate::domain::{EscalationId, GeoPoint, ItemId, MerchantId, RiderId};
use crate::error::EngineError;
use crate::events::{Event, EventBus};
use crate::fix_slot::Put;
use crate::matcher::feed::MatcherFeed;
use crate::matcher::Nearby;
use crate::metric_names;
use crate::outbox::Outbox;
use crate::protocol::{
    AttachSession, DetachSession, FixAhead, FixOrigin, FixWaiting, FromRider, GetRider, PendingFix,
    RiderCommand, RiderNotice,
};
use crate::store::Store;
use actix::prelude::*;
use futures_util::future::join_all;
pub use recover::{Recovered, RiderRecovery};
use std::sync::Arc;
use tokio::sync::{broadcast, oneshot};
pub use zones::{ZoneHolders, Zones};

#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    /// Keeps the matcher's and the planner's own threads alive as long as the engine.
    _arbiters: Vec<Arc<ArbiterKeeper>>,
}

struct ArbiterKeeper(Arbiter);

impl Drop for ArbiterKeeper {
    fn drop(&mut self) {
        self.0.stop();
    }
}

fn not_found(what: &str, id: impl std::fmt::Display) -> EngineError {
    EngineError::NotFound(format!("{what} {id}"))
}

/// One map of the directory: the actors of one kind by id.
type Listing<K, A> = parking_lot::RwLock<std::collections::HashMap<K, Addr<A>>>;

/// Asks every actor of one directory map at once; one that stopped meanwhile is left out.
async fn ask_all<K, A, M>(actors: &Listing<K, A>, ask: impl Fn() -> M) -> Vec<M::Result>
where
    A: Handler<M>,
    A::Context: dev::ToEnvelope<A, M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    let addrs: Vec<_> = actors.read().values().cloned().collect();
    join_all(addrs.iter().map(|a| a.send(ask())))
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect()
}

impl Engine {
    /// Starts the engine's actors. Must be called inside a running actix System.
    pub fn start(cfg: EngineConfig, store: Arc<dyn Store>, clock: Clock) -> Engine {
        let mut arbiters = Vec::new();
        let slack_m = cfg.dispatch.index_slack_m;
        let matcher_feed = Arc::new(MatcherFeed::default());
        let feed = matcher_feed.clone();
        let matcher = if cfg.matcher_own_arbiter {
            let arbiter = Arbiter::new();
            let addr = MatcherActor::start_in_arbiter(&arbiter.handle(), move |ctx| {
                MatcherActor::with_mailbox(ctx, slack_m, feed)
            });
            arbiters.push(Arc::new(ArbiterKeeper(arbiter)));
            addr
        } else {
            MatcherActor::create(move |ctx| MatcherActor::with_mailbox(ctx, slack_m, feed))
        };
        // A planning round may take a while in a big city: in production it gets a thread
        // of its own, so neither GPS intake nor order actors wait for it.
        let planner = (cfg.dispatch.policy == Policy::Batch).then(|| {
            let planner = PlannerActor::new(matcher.clone(), clock, cfg.dispatch.clone());
            if cfg.matcher_own_arbiter {
                let arbiter = Arbiter::new();
                let addr = PlannerActor::start_in_arbiter(&arbiter.handle(), |_| planner);
                arbiters.push(Arc::new(ArbiterKeeper(arbiter)));
                addr
            } else {
                planner.start()
            }
        });
        let bus = EventBus::new(if cfg.event_bus_capacity == 0 {
            65_536
        } else {
            cfg.event_bus_capacity
        });
        let alerts = Arc::new(crate::actors::alerts::Alerts::default());
        let desk = EscalationDesk::new(bus.clone(), store.clone(), clock, cfg.retention.final_s)
            .telling(alerts.clone())
            .start();
        let shared = Arc::new(Shared {
            cfg,
            clock,
            bus,
            store,
            dir: Directory::default(),
            matcher,
            matcher_feed,
            desk: desk.clone(),
            planner,
            peers: std::sync::OnceLock::new(),
            fleet: Default::default(),
            roster: Default::default(),
            riders_elsewhere: crate::actors::roster::channel(),
            alerts,
            alerts_heard: Default::default(),
            escalations_elsewhere: crate::actors::alerts::channel(),
            order_notices: Default::default(),
            order_notices_elsewhere: crate::actors::order_notices::channel(),
            zones: std::sync::OnceLock::new(),
            home: Arbiter::current(),
        });
        Engine {
            shared,
            _arbiters: arbiters,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.shared.cfg
    }

    pub fn now_ms(&self) -> u64 {
        self.shared.now_ms()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.bus.subscribe()
    }

    /// Other nodes' riders as their nodes publish them (several nodes; the hub's
    /// dashboards show them): never on the event bus, whose other readers record and
    /// re-emit this node's own events only.
    pub fn riders_elsewhere(&self) -> broadcast::Receiver<crate::actors::roster::RidersElsewhere> {
        self.shared.riders_elsewhere.subscribe()
    }

    /// Other nodes' escalations as their nodes publish them (several nodes; the hub's
    /// dashboards show them), never on the event bus, as [`Engine::riders_elsewhere`].
    pub fn escalations_elsewhere(
        &self,
    ) -> broadcast::Receiver<crate::actors::alerts::EscalationsHeard> {
        self.shared.escalations_elsewhere.subscribe()
    }

    /// Notices of other nodes' orders for merchant apps and tracking pages here, as their
    /// nodes send them (several nodes), never on the event bus, as
    /// [`Engine::riders_elsewhere`].
    pub fn order_notices_elsewhere(
        &self,
    ) -> broadcast::Receiver<crate::actors::order_notices::NoticesHeard> {
        self.shared.order_notices_elsewhere.subscribe()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Refuses a change the store could not take now (Redis away, or still recovering).
    fn writable(&self) -> Result<(), EngineError> {
        self.shared.writable()
    }

    /// Brings a new merchant or rider to life: stored first (a refused write starts
    /// nothing), then its actor started, listed under `id` and announced with `event`.
    async fn enlist<K: Eq + std::hash::Hash, A: Actor>(
        &self,
        stored: impl std::future::Future<Output = Result<(), crate::store::StoreError>>,
        start: impl FnOnce() -> Addr<A>,
        (listed, id): (&Listing<K, A>, K),
        event: Event,
    ) -> Result<(), EngineError> {
        stored
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        let addr = start();
        listed.write().insert(id, addr);
        self.shared.bus.publish(event);
        Ok(())
    }

    // ---- merchants ----

    pub async fn create_merchant(
        &self,
        name: String,
        location: GeoPoint,
        prep_time_s: Option<u64>,
    ) -> Result<Merchant, EngineError> {
        self.writable()?;
        let name = checked_name(name)?;
        let prep_time_s = prep_time_s.unwrap_or(DEFAULT_PREP_TIME_S);
        if prep_time_s > MAX_PREP_TIME_S {
            return Err(EngineError::InvalidInput(format!(
                "prep_time_s must be 0..{MAX_PREP_TIME_S}"
            )));
        }
        let merchant = Merchant {
            merchant_id: MerchantId::generate(),
            name,
            location,
            open: true,
            prep_time_s,
        };
        let state = MerchantState::new(merchant.clone());
        self.enlist(
            self.shared.store.save_merchant(&merchant, &[]),
            || MerchantActor::new(state, self.shared.clone()).start(),
            (&self.shared.dir.merchants, merchant.merchant_id.clone()),
            Event::MerchantChanged {
                merchant: Arc::new(merchant.clone()),
            },
        )
        .await?;
        self.share_merchant(&merchant.merchant_id).await;
        Ok(merchant)
    }

    fn merchant_addr(&self, id: &MerchantId) -> Result<Addr<MerchantActor>, EngineError> {
        self.shared
            .dir
            .merchant(id)
            .ok_or_else(|| not_found("merchant", id))
    }

    pub async fn merchant(&self, id: &MerchantId) -> Result<MerchantState, EngineError> {
        Ok(self.merchant_addr(id)?.send(GetMerchant).await?)
    }

    pub async fn merchants(&self) -> Vec<Merchant> {
        ask_all(&self.shared.dir.merchants, || GetMerchant)
            .await
            .into_iter()
            .map(|s| s.merchant)
            .collect()
    }

    pub async fn set_merchant_open(
        &self,
        id: &MerchantId,
        open: bool,
    ) -> Result<Merchant, EngineError> {
        let m = self.merchant_addr(id)?.send(SetOpen(open)).await??;
        self.share_merchant(id).await;
        Ok(m)
    }

    pub async fn add_item(
        &self,
        id: &MerchantId,
        name: String,
        price_cents: i64,
    ) -> Result<Item, EngineError> {
        let name = checked_name(name)?;
        checked_price(price_cents)?;
        let item = self
            .merchant_addr(id)?
            .send(AddItem { name, price_cents })
            .await??;
        self.share_merchant(id).await;
        Ok(item)
    }

    pub async fn update_item(
        &self,
        id: &MerchantId,
        item_id: ItemId,
        available: Option<bool>,
        price_cents: Option<i64>,
    ) -> Result<Item, EngineError> {
        if let Some(p) = price_cents {
            checked_price(p)?;
        }
        let item = self
            .merchant_addr(id)?
            .send(UpdateItem {
                item_id,
                available,
                price_cents,
            })
            .await??;
        self.share_merchant(id).await;
        Ok(item)
    }

    pub async fn items(&self, id: &MerchantId) -> Result<Vec<Item>, EngineError> {
        Ok(self.merchant(id).await?.items)
    }

    // ---- riders ----

    pub async fn create_rider(&self, name: String) -> Result<RiderView, EngineError> {
        self.writable()?;
        let name = checked_name(name)?;
        let state = RiderState::new(RiderId::generate(), name);
        let view = state.view();
        self.enlist(
            self.shared.store.save_rider(&view),
            || {
                RiderActor::create(|ctx| {
                    let fixes = self
                        .shared
                        .dir
                        .add_rider_fixes(&view.rider_id, ctx.address());
                    RiderActor::new(state, self.shared.clone(), fixes)
                })
            },
            (&self.shared.dir.riders, view.rider_id.clone()),
            Event::RiderChanged {
                rider: Arc::new(view.clone()),
            },
        )
        .await?;
        if let Some(peers) = self.shared.peers.get() {
            self.shared.roster.put(Arc::new(view.clone()));
            // Where its actor is, for the node its socket may open on.
            self.shared
                .store
                .set_rider_node(&view.rider_id, peers.node())
                .await
                .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        }
        Ok(view)
    }

    fn rider_addr(&self, id: &RiderId) -> Result<Addr<RiderActor>, EngineError> {
        self.shared
            .dir
            .rider(id)
            .ok_or_else(|| not_found("rider", id))
    }

    /// The rider as REST shows it, from its actor here or on another node.
    pub async fn rider(&self, id: &RiderId) -> Result<RiderView, EngineError> {
        let rider = self
            .shared
            .rider_ref(id)
            .ok_or_else(|| not_found("rider", id))?;
        match rider.ask(RiderMsg::View).await {
            Answer::Rider { view } => Ok(view),
            Answer::NotHere => Err(not_found("rider", id)),
            other => Err(EngineError::Unavailable(format!(
                "the rider's node did not answer: {other:?}"
            ))),
        }
    }

    pub async fn riders(&self) -> Vec<RiderView> {
        ask_all(&self.shared.dir.riders, || GetRider).await
    }

    /// Attaches a rider's session; its first frame is `welcome`.
    pub async fn attach_rider(
        &self,
        id: &RiderId,
        outbox: Outbox<RiderNotice>,
    ) -> Result<(), EngineError> {
        Ok(self.rider_addr(id)?.send(AttachSession(outbox)).await?)
    }

    pub fn detach_rider(&self, id: &RiderId, outbox: Outbox<RiderNotice>) {
        if let Ok(a) = self.rider_addr(id) {
            a.do_send(DetachSession(outbox));
        }
    }

    /// Hands a rider's message to its actor; answers go to the rider's outbox.
    ///
    /// A GPS fix goes into the rider's latest-fix-wins slot (`crate::fix_slot`), not the
    /// mailbox: into an empty slot it sends the actor one `FixWaiting`; while a fix is
    /// still waiting it replaces that one, which is shed and counted
    /// (`dispatch_gps_fixes_shed_total`). A flood of fixes so queues one fix and one
    /// notice per rider, however fast it comes.
    ///
    /// Every other command goes through the mailbox as before, so commands keep their order
    /// among themselves. A fix waiting in the slot when a command comes is taken out and
    /// queued just ahead of the command (its notice, already queued, then finds nothing).
    /// So what one session sends keeps its order on the way to the actor: a fix is applied
    /// after every command sent before it and before every command sent after it; only
    /// fixes with nothing else between them collapse into the last. Were the fix left in
    /// the slot, the notice of an earlier fix (queued ahead of the command) would apply a
    /// fix sent after the command before it: `online` would put the rider into the matcher
    /// at a position it sent later, `accept` would hand the order a fix from after the
    /// accept as its ETA's start, a fix after `offline` would be judged while still
    /// online. Mostly harmless, but the actor could no longer be reasoned about as seeing
    /// the rider's messages in the order sent. The cost is at most one extra message per
    /// command, and commands are few (and rate-limited).
    pub fn rider_command(&self, id: &RiderId, cmd: RiderCommand) -> Result<(), EngineError> {
        self.rider_handle(id)?.command(cmd);
        Ok(())
    }

    /// What a rider's socket needs to pass its commands on without a directory lookup per
    /// message (a rider actor lives as long as the engine).
    pub fn rider_handle(&self, id: &RiderId) -> Result<RiderHandle, EngineError> {
        let (slot, addr) = self
            .shared
            .dir
            .rider_fixes(id)
            .ok_or_else(|| not_found("rider", id))?;
        Ok(RiderHandle { slot, addr })
    }

    /// Riders with a known position that are online and not stale, nearest first.
    pub async fn riders_nearby(
        &self,
        at: GeoPoint,
        radius_m: f64,
        limit: usize,
    ) -> Result<Vec<(Nearby, RiderView)>, EngineError> {
        let near = self
            .shared
            .matcher
            .send(FindNearestRiders {
                at,
                limit,
                radius_m,
            })
            .await?;
        // All riders are asked at once (not one after another): one round of messages.
        let views = join_all(near.iter().map(|n| self.rider(&n.rider_id))).await;
        Ok(near
            .into_iter()
            .zip(views)
            .filter_map(|(n, view)| view.ok().map(|v| (n, v)))
            .collect())
    }

    // ---- escalations ----

    /// This node's escalations and (several nodes) those the others told of, newest
    /// first.
    pub async fn escalations(&self, open_only: bool) -> Result<Vec<Escalation>, EngineError> {
        let here = self.shared.desk.send(ListEscalations { open_only }).await?;
        let heard = {
            let mut heard = self.shared.alerts_heard.lock();
            crate::actors::alerts::prune(&self.shared, &mut heard);
            heard.list(open_only)
        };
        Ok(crate::actors::alerts_heard::with_heard(here, heard))
    }

    /// Resolves an escalation on the desk holding it: this node's, or (several nodes)
    /// the node that raised it (docs/cluster.md).
    pub async fn resolve_escalation(
        &self,
        id: EscalationId,
        note: Option<String>,
    ) -> Result<Escalation, EngineError> {
        let here = self
            .shared
            .desk
            .send(Resolve {
                id: id.clone(),
                note: note.clone(),
            })
            .await?;
        match here {
            Err(EngineError::NotFound(_)) => self.resolve_elsewhere(id, note).await.unwrap_or(here),
            here => here,
        }
    }
}
/// A name as stored: trimmed, 1–200 characters.
pub fn checked_name(name: String) -> Result<String, EngineError> {
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(EngineError::InvalidInput(
            "name must be 1..200 characters".into(),
        ));
    }
    Ok(name)
}

/// A menu price: 0 to 1,000,000.00.
pub fn checked_price(p: i64) -> Result<(), EngineError> {
    if !(0..=100_000_000).contains(&p) {
        return Err(EngineError::InvalidInput(
            "price_cents must be 0..100000000".into(),
        ));
    }
    Ok(())
}

/// A rider's fix slot and actor, held by its socket (and looked up per fix by the
/// tracking-app intake).
#[derive(Clone)]
pub struct RiderHandle {
    slot: SharedFixSlot,
    addr: Addr<RiderActor>,
}

impl RiderHandle {
    /// Passes a command from the rider's app on: a fix into the latest-fix-wins slot (one
    /// still waiting is shed, counted), anything else to the actor after the waiting fix.
    pub fn command(&self, cmd: RiderCommand) {
        match cmd {
            RiderCommand::Location(raw) => self.put_fix(PendingFix {
                raw,
                origin: FixOrigin::Socket,
            }),
            cmd => {
                let waiting = self.slot.lock().take_before_command();
                if let Some(fix) = waiting {
                    self.addr.do_send(FixAhead(fix));
                }
                self.addr.do_send(FromRider(cmd));
            }
        }
    }

    /// A fix from a tracking app (docs/protocol.md, "Tracking apps"), through the same
    /// slot, validator and actor as the socket's. The verdict comes back on the returned
    /// channel; a fix replaced in the slot by a newer one before the actor took it (shed,
    /// counted as for the socket) closes the channel unanswered. `go_online`: an accepted
    /// fix puts an offline rider online (`ingest.sets_online`).
    pub fn tracker_fix(&self, raw: RawFix, go_online: bool) -> oneshot::Receiver<FixVerdict> {
        let (verdict, answer) = oneshot::channel();
        self.put_fix(PendingFix {
            raw,
            origin: FixOrigin::Tracker { verdict, go_online },
        });
        answer
    }

    fn put_fix(&self, fix: PendingFix) {
        // The lock is let go before anything is sent (a plain `let`): the actor takes from
        // the same slot on another thread.
        let put = self.slot.lock().put(fix);
        match put {
            Put::Notify(ticket) => self.addr.do_send(FixWaiting(ticket)),
            Put::Shed => metrics::counter!(metric_names::GPS_FIXES_SHED_TOTAL).increment(1),
        }
    }
}
