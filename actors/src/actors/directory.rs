//! Where to find the actor of a rider, order or merchant by id, and a rider's GPS slot.
//! Reads are far more common than writes (one write per actor start/stop), so a read-write
//! lock per map suffices.

use super::merchant::MerchantActor;
use super::order::OrderActor;
use super::rider::RiderActor;
use crate::domain::{MerchantId, OrderId, RiderId};
use crate::fix_slot::FixSlot;
use crate::protocol::PendingFix;
use actix::Addr;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;

/// A rider's latest-fix-wins slot, shared by the engine (which puts fixes in) and the
/// rider's actor (which takes them).
pub type SharedFixSlot = Arc<Mutex<FixSlot<PendingFix>>>;

#[derive(Default)]
pub struct Directory {
    pub orders: RwLock<HashMap<OrderId, Addr<OrderActor>>>,
    pub riders: RwLock<HashMap<RiderId, Addr<RiderActor>>>,
    pub merchants: RwLock<HashMap<MerchantId, Addr<MerchantActor>>>,
    /// One slot per rider in `riders`, with the rider's address beside it, added as its
    /// actor starts: a GPS fix (the hottest path) finds both with one lookup.
    pub rider_fixes: RwLock<HashMap<RiderId, (SharedFixSlot, Addr<RiderActor>)>>,
    /// Riders and orders whose actors live on another node, and which node
    /// (docs/cluster.md); an id listed here and in `riders`/`orders` is local.
    pub remote_riders: RwLock<HashMap<RiderId, Arc<str>>>,
    pub remote_orders: RwLock<HashMap<OrderId, Arc<str>>>,
}

impl Directory {
    pub fn order(&self, id: &OrderId) -> Option<Addr<OrderActor>> {
        self.orders.read().get(id).cloned()
    }

    pub fn rider(&self, id: &RiderId) -> Option<Addr<RiderActor>> {
        self.riders.read().get(id).cloned()
    }

    /// Rider `id`'s GPS slot and its actor's address.
    pub fn rider_fixes(&self, id: &RiderId) -> Option<(SharedFixSlot, Addr<RiderActor>)> {
        self.rider_fixes.read().get(id).cloned()
    }

    /// A new, empty slot for rider `id` (whose actor is at `addr`), listed here and
    /// returned for its actor.
    pub fn add_rider_fixes(&self, id: &RiderId, addr: Addr<RiderActor>) -> SharedFixSlot {
        let slot = SharedFixSlot::default();
        self.rider_fixes
            .write()
            .insert(id.clone(), (slot.clone(), addr));
        slot
    }

    pub fn merchant(&self, id: &MerchantId) -> Option<Addr<MerchantActor>> {
        self.merchants.read().get(id).cloned()
    }
}
