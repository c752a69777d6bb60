//! Where to find the actor of a rider, order or merchant by id. Reads are far more common
//! than writes (one write per actor start/stop), so a read-write lock per map suffices.

use super::merchant::MerchantActor;
use super::order::OrderActor;
use super::rider::RiderActor;
use crate::domain::{MerchantId, OrderId, RiderId};
use actix::Addr;
use parking_lot::RwLock;
use std::collections::HashMap;

#[derive(Default)]
pub struct Directory {
    pub orders: RwLock<HashMap<OrderId, Addr<OrderActor>>>,
    pub riders: RwLock<HashMap<RiderId, Addr<RiderActor>>>,
    pub merchants: RwLock<HashMap<MerchantId, Addr<MerchantActor>>>,
}

impl Directory {
    pub fn order(&self, id: &OrderId) -> Option<Addr<OrderActor>> {
        self.orders.read().get(id).cloned()
    }

    pub fn rider(&self, id: &RiderId) -> Option<Addr<RiderActor>> {
        self.riders.read().get(id).cloned()
    }

    pub fn merchant(&self, id: &MerchantId) -> Option<Addr<MerchantActor>> {
        self.merchants.read().get(id).cloned()
    }
}
