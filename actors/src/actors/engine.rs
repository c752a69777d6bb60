//! The engine facade: creates actors, routes calls to them by id, and answers the queries
//! that span many actors. The server's handlers and the tests drive the engine only
//! through this type.

use super::desk::{EscalationDesk, ListEscalations, Resolve, RestoreBook};
use super::directory::Directory;
use super::matcher::{FindNearestRiders, MatcherActor};
use super::merchant::{AddItem, GetMerchant, MerchantActor, QuoteOrder, SetOpen, UpdateItem};
use super::order::OrderActor;
use super::rider::RiderActor;
use super::Shared;
use crate::clock::Clock;
use crate::config::EngineConfig;
use crate::domain::escalation::Escalation;
use crate::domain::merchant::{
    Item, Merchant, MerchantState, DEFAULT_PREP_TIME_S, MAX_PREP_TIME_S,
};
use crate::domain::offers::Offer;
use crate::domain::offers::TraceEntry;
use crate::domain::order::OrderStatus;
use crate::domain::order::{NewOrder, Order, OrderCommand};
use crate::domain::rider::RiderStatus;
use crate::domain::rider::{RiderState, RiderView};
use crate::domain::OfferId;
use crate::domain::{CustomerId, EscalationId, GeoPoint, ItemId, MerchantId, OrderId, RiderId};
use crate::error::EngineError;
use crate::events::{Event, EventBus};
use crate::matcher::Nearby;
use crate::outbox::Outbox;
use crate::protocol::{
    AssignByDispatcher, AttachSession, CheckAssignable, Command, DetachSession, FromRider,
    GetOrder, GetRider, GetTrace, RiderCommand, RiderNotice, WasOffered,
};
use crate::store::{OrderRecord, Snapshot, Store};
use actix::prelude::*;
use futures_util::future::join_all;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast;

#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    /// Keeps the matcher's own thread alive for as long as the engine lives.
    _matcher_arbiter: Option<Arc<ArbiterKeeper>>,
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

impl Engine {
    /// Starts the engine's actors. Must be called inside a running actix System.
    pub fn start(cfg: EngineConfig, store: Arc<dyn Store>, clock: Clock) -> Engine {
        let (matcher, keeper) = if cfg.matcher_own_arbiter {
            let arbiter = Arbiter::new();
            let addr =
                MatcherActor::start_in_arbiter(&arbiter.handle(), MatcherActor::with_mailbox);
            (addr, Some(Arc::new(ArbiterKeeper(arbiter))))
        } else {
            (MatcherActor::create(MatcherActor::with_mailbox), None)
        };
        let bus = EventBus::new(if cfg.event_bus_capacity == 0 {
            65_536
        } else {
            cfg.event_bus_capacity
        });
        let desk =
            EscalationDesk::new(bus.clone(), store.clone(), clock, cfg.retention.final_s).start();
        let shared = Arc::new(Shared {
            cfg,
            clock,
            bus,
            store,
            dir: Directory::default(),
            matcher,
            desk: desk.clone(),
        });
        Engine {
            shared,
            _matcher_arbiter: keeper,
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

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Refuses a change the store could not take now (Redis away, or still recovering).
    fn writable(&self) -> Result<(), EngineError> {
        if self.shared.store.writable() {
            Ok(())
        } else {
            Err(EngineError::Unavailable(
                "the store is unavailable; nothing was changed".into(),
            ))
        }
    }

    /// Rebuilds the engine from a store snapshot after a restart: merchants, the
    /// escalation book, riders (orders in hand, open offer, silence timers from their last
    /// fix) and every live order (offers, decliners, timers at their original due times).
    /// Call once, on an engine that has nothing yet.
    pub async fn recover(&self, snap: Snapshot) -> Recovered {
        let mut n = Recovered::default();
        for (merchant, items) in snap.merchants {
            let id = merchant.merchant_id.clone();
            let state = MerchantState { merchant, items };
            let addr = MerchantActor::new(state, self.shared.clone()).start();
            self.shared.dir.merchants.write().insert(id, addr);
            n.merchants += 1;
        }
        n.escalations = snap.escalations.len();
        n.open_escalations = self
            .shared
            .desk
            .send(RestoreBook(snap.escalations))
            .await
            .unwrap_or(0);
        // What each rider holds follows from the orders: they are the truth.
        let mut held: HashMap<RiderId, Vec<Order>> = HashMap::new();
        let mut offered: HashMap<RiderId, Offer> = HashMap::new();
        let mut won: HashMap<RiderId, (OfferId, crate::domain::OrderId)> = HashMap::new();
        for rec in &snap.orders {
            let o = &rec.order;
            if let (Some(r), OrderStatus::Assigned | OrderStatus::PickedUp) =
                (&o.rider_id, o.status)
            {
                held.entry(r.clone()).or_default().push(o.clone());
                if let Some((f, by)) = &rec.offers.won {
                    if by == r {
                        won.insert(r.clone(), (f.clone(), o.order_id.clone()));
                    }
                }
            }
            for open in &rec.offers.open {
                let newer = offered
                    .get(&open.rider_id)
                    .is_none_or(|cur| cur.expires_at_ms < open.offer.expires_at_ms);
                if newer {
                    offered.insert(open.rider_id.clone(), open.offer.clone());
                }
            }
            n.offers += rec.offers.open.len();
            n.timers += rec.timers.len();
        }
        let now = self.now_ms();
        for view in snap.riders {
            let id = view.rider_id.clone();
            let mut state = RiderState::new(id.clone(), view.name.clone());
            state.online = view.status != RiderStatus::Offline;
            state.stale = view.status == RiderStatus::Stale;
            let fix = snap
                .positions
                .get(&id)
                .copied()
                .or_else(|| view.location.map(|p| (p, view.last_seen_ms.unwrap_or(0))));
            state.last_fix = fix.map(|(point, ts_ms)| crate::domain::gps::GpsFix { point, ts_ms });
            state.orders = held.remove(&id).unwrap_or_default();
            state.offer = offered.remove(&id);
            state.won_offer = won.remove(&id);
            let heard = fix.map(|f| f.1.min(now)).unwrap_or(now);
            let addr = RiderActor::restore(state, self.shared.clone(), heard).start();
            self.shared.dir.riders.write().insert(id, addr);
            n.riders += 1;
        }
        for rec in snap.orders {
            let id = rec.order.order_id.clone();
            let addr = OrderActor::restore(rec, self.shared.clone()).start();
            self.shared.dir.orders.write().insert(id, addr);
            n.orders += 1;
        }
        n
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
        self.shared
            .store
            .save_merchant(&merchant, &[])
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        let addr =
            MerchantActor::new(MerchantState::new(merchant.clone()), self.shared.clone()).start();
        self.shared
            .dir
            .merchants
            .write()
            .insert(merchant.merchant_id.clone(), addr);
        self.shared.bus.publish(Event::MerchantChanged {
            merchant: Arc::new(merchant.clone()),
        });
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
        let addrs: Vec<_> = self.shared.dir.merchants.read().values().cloned().collect();
        join_all(addrs.iter().map(|a| a.send(GetMerchant)))
            .await
            .into_iter()
            .filter_map(|r| r.ok().map(|s| s.merchant))
            .collect()
    }

    pub async fn set_merchant_open(
        &self,
        id: &MerchantId,
        open: bool,
    ) -> Result<Merchant, EngineError> {
        self.merchant_addr(id)?.send(SetOpen(open)).await?
    }

    pub async fn add_item(
        &self,
        id: &MerchantId,
        name: String,
        price_cents: i64,
    ) -> Result<Item, EngineError> {
        let name = checked_name(name)?;
        checked_price(price_cents)?;
        self.merchant_addr(id)?
            .send(AddItem { name, price_cents })
            .await?
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
        self.merchant_addr(id)?
            .send(UpdateItem {
                item_id,
                available,
                price_cents,
            })
            .await?
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
        self.shared
            .store
            .save_rider(&view)
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        let addr = RiderActor::new(state, self.shared.clone()).start();
        self.shared
            .dir
            .riders
            .write()
            .insert(view.rider_id.clone(), addr);
        self.shared.bus.publish(Event::RiderChanged {
            rider: Arc::new(view.clone()),
        });
        Ok(view)
    }

    fn rider_addr(&self, id: &RiderId) -> Result<Addr<RiderActor>, EngineError> {
        self.shared
            .dir
            .rider(id)
            .ok_or_else(|| not_found("rider", id))
    }

    pub async fn rider(&self, id: &RiderId) -> Result<RiderView, EngineError> {
        Ok(self.rider_addr(id)?.send(GetRider).await?)
    }

    pub async fn riders(&self) -> Vec<RiderView> {
        let addrs: Vec<_> = self.shared.dir.riders.read().values().cloned().collect();
        join_all(addrs.iter().map(|a| a.send(GetRider)))
            .await
            .into_iter()
            .filter_map(Result::ok)
            .collect()
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
    pub fn rider_command(&self, id: &RiderId, cmd: RiderCommand) -> Result<(), EngineError> {
        self.rider_addr(id)?.do_send(FromRider(cmd));
        Ok(())
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

    // ---- orders ----

    pub async fn create_order(
        &self,
        customer_id: CustomerId,
        merchant_id: &MerchantId,
        items: Vec<(ItemId, u32)>,
        dropoff: GeoPoint,
    ) -> Result<Order, EngineError> {
        self.create_order_as(
            OrderId::generate(),
            customer_id,
            merchant_id,
            items,
            dropoff,
        )
        .await
    }

    /// Creates an order under a caller-chosen id (derived from an idempotency key), or
    /// returns that customer's order if it already exists: a retry whose first response was
    /// lost (crash, store outage) finds the order it created instead of making another.
    pub async fn create_order_as(
        &self,
        order_id: OrderId,
        customer_id: CustomerId,
        merchant_id: &MerchantId,
        items: Vec<(ItemId, u32)>,
        dropoff: GeoPoint,
    ) -> Result<Order, EngineError> {
        match self.order(&order_id).await {
            Ok(existing) if existing.customer_id == customer_id => return Ok(existing),
            Ok(_) => {
                return Err(EngineError::InvalidInput(
                    "that order id belongs to another customer".into(),
                ))
            }
            Err(EngineError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        self.writable()?;
        let (lines, pickup, _prep) = self
            .merchant_addr(merchant_id)?
            .send(QuoteOrder(items))
            .await??;
        let order = Order::new(
            NewOrder {
                order_id,
                customer_id,
                merchant_id: merchant_id.clone(),
                items: lines,
                pickup,
                dropoff,
            },
            self.now_ms(),
        );
        self.shared
            .store
            .save_order_record(&OrderRecord::bare(order.clone()))
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        let addr = OrderActor::new(order.clone(), self.shared.clone()).start();
        self.shared
            .dir
            .orders
            .write()
            .insert(order.order_id.clone(), addr);
        metrics::counter!(crate::metric_names::ORDERS_TOTAL, "status" => "pending_payment")
            .increment(1);
        self.shared.bus.publish(Event::OrderChanged {
            order: Arc::new(order.clone()),
            previous_status: None,
        });
        Ok(order)
    }

    /// The live order, or its final record from the store.
    pub async fn order(&self, id: &OrderId) -> Result<Order, EngineError> {
        if let Some(addr) = self.shared.dir.order(id) {
            if let Ok(o) = addr.send(GetOrder).await {
                return Ok(o);
            }
        }
        self.shared
            .store
            .load_order(id)
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?
            .ok_or_else(|| not_found("order", id))
    }

    async fn live_order_addr(&self, id: &OrderId) -> Result<Addr<OrderActor>, EngineError> {
        if let Some(a) = self.shared.dir.order(id) {
            return Ok(a);
        }
        // Known but finished: every command is an illegal transition.
        let o = self.order(id).await?;
        Err(EngineError::InvalidTransition(format!(
            "order {id} is {} and cannot change",
            o.status
        )))
    }

    /// Runs a state-machine command on an order.
    pub async fn order_command(
        &self,
        id: &OrderId,
        cmd: OrderCommand,
    ) -> Result<Order, EngineError> {
        let addr = self.live_order_addr(id).await?;
        if let OrderCommand::Accept { prep_time_s } = &cmd {
            if *prep_time_s > MAX_PREP_TIME_S {
                return Err(EngineError::InvalidInput(format!(
                    "prep_time_s must be 0..{MAX_PREP_TIME_S}"
                )));
            }
        }
        addr.send(Command(cmd)).await?
    }

    /// The merchant accepts; prep time defaults to the merchant's.
    pub async fn accept_order(
        &self,
        id: &OrderId,
        prep_time_s: Option<u64>,
    ) -> Result<Order, EngineError> {
        let order = self.order(id).await?;
        let prep = match prep_time_s {
            Some(p) => p,
            None => {
                self.merchant(&order.merchant_id)
                    .await?
                    .merchant
                    .prep_time_s
            }
        };
        self.order_command(id, OrderCommand::Accept { prep_time_s: prep })
            .await
    }

    /// Manual assignment by the dispatcher: the rider must be connected, online, not stale.
    pub async fn assign(&self, id: &OrderId, rider_id: &RiderId) -> Result<Order, EngineError> {
        let addr = self.live_order_addr(id).await?;
        let rider = self
            .rider_addr(rider_id)
            .map_err(|_| EngineError::RiderUnavailable(format!("no rider {rider_id}")))?;
        let fix = rider.send(CheckAssignable).await??;
        addr.send(AssignByDispatcher {
            rider_id: rider_id.clone(),
            fix,
        })
        .await?
    }

    pub async fn trace(&self, id: &OrderId) -> Result<Vec<TraceEntry>, EngineError> {
        if let Some(a) = self.shared.dir.order(id) {
            if let Ok(t) = a.send(GetTrace).await {
                return Ok(t);
            }
        }
        // A finished order's trace was stored with it.
        self.shared
            .store
            .load_order_record(id)
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?
            .map(|r| r.offers.trace)
            .ok_or_else(|| not_found("order", id))
    }

    /// Was this order ever offered to `rider` (now or before)?
    pub async fn was_offered(&self, id: &OrderId, rider: &RiderId) -> Result<bool, EngineError> {
        if let Some(a) = self.shared.dir.order(id) {
            if let Ok(b) = a.send(WasOffered(rider.clone())).await {
                return Ok(b);
            }
        }
        Ok(self
            .shared
            .store
            .load_order_record(id)
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?
            .is_some_and(|r| r.offers.offered.contains(rider)))
    }

    /// Every order whose actor is alive (not final, or final moments ago).
    pub async fn live_orders(&self) -> Vec<Order> {
        let addrs: Vec<_> = self.shared.dir.orders.read().values().cloned().collect();
        join_all(addrs.iter().map(|a| a.send(GetOrder)))
            .await
            .into_iter()
            .filter_map(Result::ok)
            .collect()
    }

    // ---- escalations ----

    pub async fn escalations(&self, open_only: bool) -> Result<Vec<Escalation>, EngineError> {
        Ok(self.shared.desk.send(ListEscalations { open_only }).await?)
    }

    pub async fn resolve_escalation(
        &self,
        id: EscalationId,
        note: Option<String>,
    ) -> Result<Escalation, EngineError> {
        self.shared.desk.send(Resolve { id, note }).await?
    }
}

/// What [`Engine::recover`] brought back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    pub orders: usize,
    pub riders: usize,
    pub merchants: usize,
    pub offers: usize,
    pub timers: usize,
    pub escalations: usize,
    pub open_escalations: usize,
}

fn checked_name(name: String) -> Result<String, EngineError> {
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(EngineError::InvalidInput(
            "name must be 1..200 characters".into(),
        ));
    }
    Ok(name)
}

fn checked_price(p: i64) -> Result<(), EngineError> {
    if !(0..=100_000_000).contains(&p) {
        return Err(EngineError::InvalidInput(
            "price_cents must be 0..100000000".into(),
        ));
    }
    Ok(())
}
