//! A rider's state as the RiderActor owns it. The status is derived, never stored, so it
//! cannot disagree with the facts it summarises.

use super::gps::GpsFix;
use super::ids::{OfferId, OrderId, RiderId};
use super::offers::Offer;
use super::order::{Order, OrderStatus};
use super::GeoPoint;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RiderStatus {
    Offline,
    Idle,
    Offered,
    Busy,
    Stale,
}

impl RiderStatus {
    pub const ALL: [RiderStatus; 5] = [
        RiderStatus::Offline,
        RiderStatus::Idle,
        RiderStatus::Offered,
        RiderStatus::Busy,
        RiderStatus::Stale,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RiderStatus::Offline => "offline",
            RiderStatus::Idle => "idle",
            RiderStatus::Offered => "offered",
            RiderStatus::Busy => "busy",
            RiderStatus::Stale => "stale",
        }
    }
}

/// The protocol's rider object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiderView {
    pub rider_id: RiderId,
    pub name: String,
    pub location: Option<GeoPoint>,
    pub status: RiderStatus,
    pub order_ids: Vec<OrderId>,
    pub last_seen_ms: Option<u64>,
    /// The offer the rider holds, if any (an addition to the protocol's rider object, for
    /// the dashboard: bundles and next-job offers).
    #[serde(default)]
    pub offer: Option<RiderOfferView>,
}

/// The offer a rider holds, as the dashboard sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiderOfferView {
    pub offer_id: OfferId,
    /// Every order of the offer, in drop-off sequence (several: a bundle).
    pub order_ids: Vec<OrderId>,
    pub expires_at_ms: u64,
    /// Offered while the rider is still busy with the orders in hand (a next-job offer).
    pub next_job: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiderState {
    pub rider_id: RiderId,
    pub name: String,
    pub online: bool,
    pub stale: bool,
    pub last_fix: Option<GpsFix>,
    pub offer: Option<Offer>,
    /// Orders in hand, as last seen (status, pickup, dropoff) for ETA and reconnects.
    pub orders: Vec<Order>,
    /// The offer this rider won most recently and the orders it won with it (a bundle: in
    /// drop-off sequence), so a repeated accept answers `assigned` for each again.
    pub won_offer: Option<(OfferId, Vec<OrderId>)>,
    /// When the rider's shift ends, as the rider said (`shift`): no pickup is planned after.
    pub shift_end_ms: Option<u64>,
}

impl RiderState {
    pub fn new(rider_id: RiderId, name: String) -> Self {
        Self {
            rider_id,
            name,
            online: false,
            stale: false,
            last_fix: None,
            offer: None,
            orders: Vec::new(),
            won_offer: None,
            shift_end_ms: None,
        }
    }

    pub fn status(&self) -> RiderStatus {
        if !self.online {
            RiderStatus::Offline
        } else if self.stale {
            RiderStatus::Stale
        } else if !self.orders.is_empty() {
            // A busy rider holding a next-job offer stays busy (docs/protocol.md, v1.1).
            RiderStatus::Busy
        } else if self.offer.is_some() {
            RiderStatus::Offered
        } else {
            RiderStatus::Idle
        }
    }

    /// May the matcher offer this rider an order?
    pub fn available_for_offers(&self) -> bool {
        self.status() == RiderStatus::Idle && self.last_fix.is_some()
    }

    /// A busy rider that may be offered its next job (docs/protocol.md, "Bundles and
    /// next-job offers"): online, heard from, no offer open, every order in hand picked up,
    /// and the drop-offs left (nearest first, at `speed_mps`) done within `next_job_s`.
    /// Returns when and where it will be free.
    pub fn next_job_window(
        &self,
        now_ms: u64,
        speed_mps: f64,
        next_job_s: f64,
    ) -> Option<(u64, GeoPoint)> {
        let fix = self.last_fix?;
        if self.status() != RiderStatus::Busy
            || self.offer.is_some()
            || next_job_s <= 0.0
            || self
                .orders
                .iter()
                .any(|o| o.status != OrderStatus::PickedUp)
        {
            return None;
        }
        let mut left: Vec<GeoPoint> = self.orders.iter().map(|o| o.dropoff).collect();
        let (mut at, mut metres) = (fix.point, 0.0);
        while !left.is_empty() {
            let (i, d) = left
                .iter()
                .map(|p| at.distance_m(p))
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("not empty");
            metres += d;
            at = left.swap_remove(i);
        }
        let remaining_s = metres / speed_mps.max(0.1);
        (remaining_s <= next_job_s).then(|| (now_ms + (remaining_s * 1000.0) as u64, at))
    }

    pub fn position(&self) -> Option<GeoPoint> {
        self.last_fix.map(|f| f.point)
    }

    pub fn holds(&self, order_id: &OrderId) -> bool {
        self.orders.iter().any(|o| &o.order_id == order_id)
    }

    /// Replaces or adds the rider's copy of an order; drops it once it leaves the rider.
    pub fn update_order(&mut self, order: Order) {
        let keep = order.rider_id.as_ref() == Some(&self.rider_id)
            && matches!(order.status, OrderStatus::Assigned | OrderStatus::PickedUp);
        self.orders.retain(|o| o.order_id != order.order_id);
        if keep {
            self.orders.push(order);
        }
    }

    pub fn drop_order(&mut self, order_id: &OrderId) -> bool {
        let before = self.orders.len();
        self.orders.retain(|o| &o.order_id != order_id);
        before != self.orders.len()
    }

    pub fn view(&self) -> RiderView {
        RiderView {
            rider_id: self.rider_id.clone(),
            name: self.name.clone(),
            location: self.position(),
            status: self.status(),
            order_ids: self.orders.iter().map(|o| o.order_id.clone()).collect(),
            last_seen_ms: self.last_fix.map(|f| f.ts_ms),
            offer: self.offer.as_ref().map(|o| RiderOfferView {
                offer_id: o.offer_id.clone(),
                order_ids: o.order_ids(),
                expires_at_ms: o.expires_at_ms,
                next_job: !self.orders.is_empty(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_derived_in_priority_order() {
        let mut r = RiderState::new(RiderId::parse("r_1").unwrap(), "A".into());
        assert_eq!(r.status(), RiderStatus::Offline);
        r.online = true;
        assert_eq!(r.status(), RiderStatus::Idle);
        assert!(!r.available_for_offers(), "no position yet");
        r.last_fix = Some(GpsFix {
            point: GeoPoint::new(1.0, 1.0).unwrap(),
            ts_ms: 5,
        });
        assert!(r.available_for_offers());
        r.stale = true;
        assert_eq!(r.status(), RiderStatus::Stale);
        assert!(!r.available_for_offers());
    }
}
