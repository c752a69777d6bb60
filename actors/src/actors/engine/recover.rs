//! Rebuilding the engine from a store snapshot after a restart (kill -9 included).

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
use crate::domain::OfferId;
use crate::domain::RiderId;
use crate::store::Snapshot;
use actix::prelude::*;
use std::collections::HashMap;

impl Engine {
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
        let mut won: HashMap<RiderId, (OfferId, Vec<crate::domain::OrderId>)> = HashMap::new();
        for rec in &snap.orders {
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
        let now = self.now_ms();
        // Sized once for the whole city rather than grown (and rehashed) step by step.
        let dir = &self.shared.dir;
        dir.riders.write().reserve(snap.riders.len());
        dir.rider_fixes.write().reserve(snap.riders.len());
        dir.orders.write().reserve(snap.orders.len());
        let mut in_matcher = Vec::with_capacity(snap.riders.len());
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
            n.riders += 1;
        }
        // Before any order actor starts asking it for candidates, and whatever the
        // mailbox's capacity: the riders have not started yet and send it nothing.
        self.shared.matcher.do_send(RestoreRiders(in_matcher));
        for rec in snap.orders {
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
