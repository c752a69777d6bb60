//! Every frame the server pushes on the merchant, tracking and dashboard sockets, as types
//! (docs/protocol.md, "WebSockets"). The rider socket's frames are the engine's
//! (`dispatch_actors::protocol::RiderNotice`).
//!
//! The same types give the frames' JSON Schema (src/api_doc/socket_frames.rs), so the
//! schema a client validates against is the one the server encodes with.
//!
//! Frames are encoded through `serde_json::Value`, whose objects keep keys sorted: that is
//! the byte layout clients have always received (the frames used to be built with
//! `json!`), so a client comparing bytes, or a cache keyed on them, sees no change.

use crate::hub::Stats;
use crate::share::SharedOrder;
use dispatch_actors::domain::escalation::Escalation;
use dispatch_actors::domain::merchant::Merchant;
use dispatch_actors::domain::order::{Order, OrderStatus};
use dispatch_actors::domain::rider::RiderView;
use dispatch_actors::domain::share::SharePrivacy;
use dispatch_actors::domain::{MerchantId, OrderId};
use serde::Serialize;
use std::sync::Arc;

/// The merchant app's frames.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MerchantFrame<'a> {
    /// On connect: the merchant's orders not in a final state.
    Welcome {
        merchant_id: &'a MerchantId,
        orders: &'a [Order],
    },
    /// A paid order, new to the merchant.
    NewOrder {
        order: &'a Order,
    },
    /// Any later change of one of its orders.
    OrderUpdated {
        order: &'a Order,
    },
    RiderArriving {
        order_id: &'a OrderId,
        eta_s: u64,
    },
    Reminder {
        order_id: &'a OrderId,
        message: &'a str,
    },
}

/// The customer's tracking page frames.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TrackFrame<'a> {
    Snapshot {
        order: &'a Order,
    },
    Status {
        order_id: &'a OrderId,
        status: OrderStatus,
        at_ms: u64,
    },
    RiderLocation {
        lat: f64,
        lon: f64,
        ts_ms: u64,
        eta_s: u64,
    },
}

/// The share link socket's frames (`/ws/share`). Its `status` and `rider_location` are the
/// tracking socket's: the hub sends one encoded frame to both (`rider_location` only to a
/// link that shows the position), and a unit test holds the two encodings equal. Its
/// `snapshot` carries the order as shared, with the link's privacy and expiry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShareFrame<'a> {
    Snapshot {
        order: SharedOrder<'a>,
        privacy: SharePrivacy,
        expires_at_ms: u64,
    },
    Status {
        order_id: &'a OrderId,
        status: OrderStatus,
        at_ms: u64,
    },
    RiderLocation {
        lat: f64,
        lon: f64,
        ts_ms: u64,
        eta_s: u64,
    },
}

/// What the dashboard's `snapshot` (everything live, read from the engine) and `updates`
/// (what changed since the last batch, shared `Arc`s from events) both carry; `T` is the
/// object itself or an `Arc` of it, which serialize alike.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(bound = "R: Serialize, O: Serialize, E: Serialize, M: Serialize")]
#[schema(bound = "")]
pub struct Board<'a, R = RiderView, O = Order, E = Escalation, M = Merchant> {
    #[schema(value_type = Vec<RiderView>)]
    pub riders: &'a [R],
    #[schema(value_type = Vec<Order>)]
    pub orders: &'a [O],
    #[schema(value_type = Vec<Escalation>)]
    pub escalations: &'a [E],
    #[schema(value_type = Vec<Merchant>)]
    pub merchants: &'a [M],
    pub stats: Stats,
}

/// A batch of changes from events.
pub type SharedBoard<'a> = Board<'a, Arc<RiderView>, Arc<Order>, Arc<Escalation>, Arc<Merchant>>;

/// The dispatcher's dashboard frames.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DashboardFrame<'a> {
    Snapshot(Board<'a>),
    Updates(SharedBoard<'a>),
}

/// The frame as the text sent on the socket (keys sorted, see the module comment).
pub fn encode(frame: &impl Serialize) -> String {
    match serde_json::to_value(frame) {
        Ok(v) => v.to_string(),
        // Only a map with non-string keys fails here; none of the frames has one.
        Err(e) => {
            tracing::error!(error = %e, "frame not serializable");
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatch_actors::domain::order::{NewOrder, OrderLine, Pickup};
    use dispatch_actors::domain::{CustomerId, GeoPoint, ItemId};
    use serde_json::json;

    #[test]
    fn the_share_socket_gets_the_tracking_sockets_status_and_position_frames() {
        let id = OrderId::parse("o_test").unwrap();
        let status = OrderStatus::PickedUp;
        assert_eq!(
            encode(&TrackFrame::Status {
                order_id: &id,
                status,
                at_ms: 7
            }),
            encode(&ShareFrame::Status {
                order_id: &id,
                status,
                at_ms: 7
            })
        );
        let (lat, lon, ts_ms, eta_s) = (31.2, 121.4, 9, 60);
        assert_eq!(
            encode(&TrackFrame::RiderLocation {
                lat,
                lon,
                ts_ms,
                eta_s
            }),
            encode(&ShareFrame::RiderLocation {
                lat,
                lon,
                ts_ms,
                eta_s
            })
        );
    }

    fn sample_order() -> Order {
        let m = MerchantId::parse("m_test").unwrap();
        Order::new(
            NewOrder {
                order_id: OrderId::parse("o_test").unwrap(),
                customer_id: CustomerId::parse("c_test").unwrap(),
                merchant_id: m.clone(),
                items: vec![OrderLine {
                    item_id: ItemId::parse("i_a").unwrap(),
                    name: "Noodles".into(),
                    qty: 2,
                    price_cents: 1250,
                }],
                pickup: Pickup {
                    lat: 31.23,
                    lon: 121.47,
                    merchant_id: m,
                    name: "Shop".into(),
                },
                dropoff: GeoPoint::new(31.24, 121.48).unwrap(),
            },
            1_000,
        )
    }

    #[test]
    fn frames_have_the_bytes_the_json_macro_gave_them() {
        let order = sample_order();
        let id = &order.order_id;
        let m = &order.merchant_id;
        let orders = [order.clone()];
        let cases = [
            (
                encode(&MerchantFrame::Welcome {
                    merchant_id: m,
                    orders: &orders,
                }),
                json!({"type": "welcome", "merchant_id": m, "orders": orders}),
            ),
            (
                encode(&MerchantFrame::NewOrder { order: &order }),
                json!({"type": "new_order", "order": &order}),
            ),
            (
                encode(&MerchantFrame::OrderUpdated { order: &order }),
                json!({"type": "order_updated", "order": &order}),
            ),
            (
                encode(&MerchantFrame::RiderArriving {
                    order_id: id,
                    eta_s: 42,
                }),
                json!({"type": "rider_arriving", "order_id": id, "eta_s": 42}),
            ),
            (
                encode(&MerchantFrame::Reminder {
                    order_id: id,
                    message: "accept it",
                }),
                json!({"type": "reminder", "order_id": id, "message": "accept it"}),
            ),
            (
                encode(&TrackFrame::Snapshot { order: &order }),
                json!({"type": "snapshot", "order": &order}),
            ),
            (
                encode(&TrackFrame::Status {
                    order_id: id,
                    status: order.status,
                    at_ms: 7,
                }),
                json!({"type": "status", "order_id": id, "status": order.status, "at_ms": 7}),
            ),
            (
                encode(&TrackFrame::RiderLocation {
                    lat: 31.25,
                    lon: 121.5,
                    ts_ms: 9,
                    eta_s: 60,
                }),
                json!({"type": "rider_location", "lat": 31.25, "lon": 121.5, "ts_ms": 9, "eta_s": 60}),
            ),
        ];
        for (typed, built) in cases {
            assert_eq!(typed, built.to_string());
        }
        let arc = [Arc::new(order.clone())];
        let stats = Stats {
            offers_accepted: 3,
            offers_expired: 1,
            median_assign_s: Some(12.5),
        };
        let snapshot = DashboardFrame::Snapshot(Board {
            riders: &[],
            orders: &orders,
            escalations: &[],
            merchants: &[],
            stats: stats.clone(),
        });
        let updates = DashboardFrame::Updates(Board {
            riders: &[],
            orders: &arc,
            escalations: &[],
            merchants: &[],
            stats: stats.clone(),
        });
        for (ty, frame) in [("snapshot", snapshot), ("updates", updates)] {
            let built = json!({"type": ty, "riders": [], "orders": arc,
                "escalations": [], "merchants": [], "stats": stats});
            assert_eq!(encode(&frame), built.to_string());
        }
    }
}
