//! Rebuilding the engine from a store snapshot after a restart (kill -9 included).
//!
//! In three steps, so that a large store is rebuilt while it is still being read
//! ([`SnapshotPart`]): [`Engine::recover_head`] (merchants, escalations, and what each
//! rider holds, from the orders), [`Engine::recover_riders`] for each chunk of riders,
//! [`Engine::recover_orders`] last. [`Engine::recover`] runs them over a whole snapshot.

use super::Engine;
use crate::actors::desk::RestoreBook;
use crate::actors::matcher::RestoreRiders;
use crate::actors::merchant::MerchantActor;
use crate::actors::order::OrderActor;
use crate::actors::rider::RiderActor;
use crate::domain::merchant::MerchantState;
use crate::domain::offers::Offer;
use crate::domain::order::Order;
use crate::domain::order::OrderStatus;
use crate::domain::rider::RiderState;
use crate::domain::rider::RiderStatus;
use crate::domain::{OfferId, OrderId, RiderId};
use crate::store::{OrderRecord, RiderRecord, Snapshot, SnapshotHead};
use actix::prelude::*;
use std::collections::HashMap;

/// Recovery between its steps: what each rider holds, as the orders say, and the counts.
pub struct RiderRecovery {
    held: HashMap<RiderId, Vec<Order>>,
    offered: HashMap<RiderId, Offer>,
    won: HashMap<RiderId, (OfferId, Vec<OrderId>)>,
    now: u64,
    n: Recovered,
}

impl Engine {
    /// Rebuilds the engine from a store snapshot after a restart: merchants, the
    /// escalation book, riders (orders in hand, open offer, silence timers from their last
    /// fix) and every live order (offers, decliners, timers at their original due times).
    /// Call once, on an engine that has nothing yet.
    pub async fn recover(&self, mut snap: Snapshot) -> Recovered {
        let riders: Vec<RiderRecord> = snap
            .riders
            .into_iter()
            .map(|v| {
                let p = snap.positions.remove(&v.rider_id);
                (v, p)
            })
            .collect();
        let head = SnapshotHead {
            orders: snap.orders,
            merchants: snap.merchants,
            escalations: snap.escalations,
            accounts: Vec::new(),
            riders: riders.len(),
        };
        let (mut r, orders) = self.recover_head(head).await;
        self.recover_riders(&mut r, riders);
        self.recover_orders(r, orders)
    }

    /// Step one: merchants, the escalation book, and what each rider holds (the orders
    /// are the truth). Hands back the orders for the last step.
    pub async fn recover_head(&self, head: SnapshotHead) -> (RiderRecovery, Vec<OrderRecord>) {
        let mut n = Recovered::default();
        for (merchant, items) in head.merchants {
            let id = merchant.merchant_id.clone();
            let state = MerchantState { merchant, items };
            let addr = MerchantActor::new(state, self.shared.clone()).start();
            self.shared.dir.merchants.write().insert(id, addr);
            n.merchants += 1;
        }
        n.escalations = head.escalations.len();
        n.open_escalations = self
            .shared
            .desk
            .send(RestoreBook(head.escalations))
            .await
            .unwrap_or(0);
        let mut held: HashMap<RiderId, Vec<Order>> = HashMap::new();
        let mut offered: HashMap<RiderId, Offer> = HashMap::new();
        let mut won: HashMap<RiderId, (OfferId, Vec<OrderId>)> = HashMap::new();
        for rec in &head.orders {
            let o = &rec.order;
            if let (Some(r), OrderStatus::Assigned | OrderStatus::PickedUp) =
                (&o.rider_id, o.status)
            {
                held.entry(r.clone()).or_default().push(o.clone());
                if let Some((f, by)) = &rec.offers.won {
                    if by == r {
                        // Every order of a won bundle shares its offer id.
                        let w = won
                            .entry(r.clone())
                            .or_insert_with(|| (f.clone(), Vec::new()));
                        if w.0 != *f {
                            *w = (f.clone(), Vec::new());
                        }
                        w.1.push(o.order_id.clone());
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
        // Sized once for the whole city rather than grown (and rehashed) step by step.
        let dir = &self.shared.dir;
        dir.riders.write().reserve(head.riders);
        dir.rider_fixes.write().reserve(head.riders);
        dir.orders.write().reserve(head.orders.len());
        let r = RiderRecovery {
            held,
            offered,
            won,
            now: self.now_ms(),
            n,
        };
        (r, head.orders)
    }

    /// Step two, for each chunk of riders: their actors, and their places in the matcher
    /// (sent before any of them starts, whatever the mailbox's capacity).
    pub fn recover_riders(&self, r: &mut RiderRecovery, riders: Vec<RiderRecord>) {
        let dir = &self.shared.dir;
        let mut in_matcher = Vec::with_capacity(riders.len());
        for (view, position) in riders {
            let id = view.rider_id.clone();
            let mut state = RiderState::new(id.clone(), view.name.clone());
            state.online = view.status != RiderStatus::Offline;
            state.stale = view.status == RiderStatus::Stale;
            let fix =
                position.or_else(|| view.location.map(|p| (p, view.last_seen_ms.unwrap_or(0))));
            state.last_fix = fix.map(|(point, ts_ms)| crate::domain::gps::GpsFix { point, ts_ms });
            state.orders = r.held.remove(&id).unwrap_or_default();
            state.offer = r.offered.remove(&id);
            state.won_offer = r.won.remove(&id);
            let heard = fix.map(|f| f.1.min(r.now)).unwrap_or(r.now);
            let shared = self.shared.clone();
            let stored_status = view.status;
            let mut entry = None;
            let addr = RiderActor::create(|ctx| {
                let fixes = shared.dir.add_rider_fixes(&id, ctx.address());
                let actor = RiderActor::restore(state, shared.clone(), fixes, heard, stored_status);
                entry = actor.matcher_upsert();
                actor
            });
            in_matcher.extend(entry);
            dir.riders.write().insert(id, addr);
            r.n.riders += 1;
        }
        self.shared.matcher.do_send(RestoreRiders(in_matcher));
    }

    /// Step three: every live order's actor (after the riders, whom they may message at
    /// once).
    pub fn recover_orders(&self, r: RiderRecovery, orders: Vec<OrderRecord>) -> Recovered {
        let mut n = r.n;
        for rec in orders {
            let id = rec.order.order_id.clone();
            let addr = OrderActor::restore(rec, self.shared.clone()).start();
            self.shared.dir.orders.write().insert(id, addr);
            n.orders += 1;
        }
        n
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
