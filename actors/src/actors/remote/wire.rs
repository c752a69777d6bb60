//! What order and rider actors send each other across nodes: the actix messages of
//! `crate::protocol` as data (JSON in a mesh entry), and what comes back.

use crate::domain::escalation::Escalation;
use crate::domain::gps::{FixVerdict, GpsFix, RawFix};
use crate::domain::merchant::MerchantState;
use crate::domain::offers::{Offer, OfferCloseReason, TraceEntry};
use crate::domain::order::{Order, OrderCommand};
use crate::domain::rider::{RiderState, RiderView};
use crate::domain::{
    CustomerId, EscalationId, GeoPoint, ItemId, MerchantId, OfferId, OrderId, RiderId,
};
use crate::error::EngineError;
use crate::events::Event;
use crate::matcher::feed::Change;
use crate::protocol::{ReportKind, UnassignReason};
use serde::{Deserialize, Serialize};

/// One message for an actor on another node.
// Messages live for one send: built, encoded or delivered, dropped. Boxing the order
// inside would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Call {
    Rider {
        rider_id: RiderId,
        msg: RiderMsg,
    },
    Order {
        order_id: OrderId,
        msg: OrderMsg,
    },
    /// Changes of the sender's riders for this node's matcher (`actors::fleet`).
    Fleet {
        changes: Vec<Change>,
    },
    /// The latest dashboard views of the sender's riders (`actors::roster`).
    Riders {
        views: Vec<std::sync::Arc<RiderView>>,
    },
    /// Changes of the sender's escalations, for this node's list and dashboards
    /// (`actors::alerts`).
    Escalations {
        escalations: Vec<std::sync::Arc<Escalation>>,
    },
    /// Notices of the sender's orders for merchant apps and tracking pages connected here
    /// (`actors::order_notices`).
    OrderNotices {
        notices: Vec<OrderNotice>,
    },
    /// A dispatcher resolves one of this node's escalations through the sender.
    ResolveEscalation {
        escalation_id: EscalationId,
        note: Option<String>,
    },
    /// A merchant as the sender just stored it (every node keeps every merchant).
    Merchant {
        state: MerchantState,
    },
    /// Create an order here: this node holds its merchant's zone.
    CreateOrder {
        order_id: OrderId,
        customer_id: CustomerId,
        merchant_id: MerchantId,
        items: Vec<(ItemId, u32)>,
        dropoff: GeoPoint,
    },
}

/// One of an order's notices for sockets (`Event`'s variants of the same names and
/// fields): `Event` is only ever written, this travels both ways.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderNotice {
    RiderMovedForOrder {
        order_id: OrderId,
        customer_id: CustomerId,
        merchant_id: MerchantId,
        rider_id: RiderId,
        location: GeoPoint,
        ts_ms: u64,
        eta_s: u64,
    },
    RiderArriving {
        order_id: OrderId,
        merchant_id: MerchantId,
        eta_s: u64,
    },
    MerchantReminded {
        merchant_id: MerchantId,
        order_id: OrderId,
        message: String,
    },
    /// An offer of the order ran out unanswered (`Event::OfferClosed` with reason
    /// `expired`): dashboards on every node count it in their live counters (once per
    /// offer: the mesh may deliver a note twice).
    OfferExpired {
        order_id: OrderId,
        offer_id: OfferId,
    },
    /// A kind of notice this node does not know (sent by a newer node): skipped, so the
    /// rest of its note still reaches the sockets.
    #[serde(other)]
    Unknown,
}

impl OrderNotice {
    /// The notice an event is, if it is one.
    pub fn from_event(event: &Event) -> Option<OrderNotice> {
        Some(match event.clone() {
            Event::RiderMovedForOrder {
                order_id,
                customer_id,
                merchant_id,
                rider_id,
                location,
                ts_ms,
                eta_s,
            } => OrderNotice::RiderMovedForOrder {
                order_id,
                customer_id,
                merchant_id,
                rider_id,
                location,
                ts_ms,
                eta_s,
            },
            Event::RiderArriving {
                order_id,
                merchant_id,
                eta_s,
            } => OrderNotice::RiderArriving {
                order_id,
                merchant_id,
                eta_s,
            },
            Event::MerchantReminded {
                merchant_id,
                order_id,
                message,
            } => OrderNotice::MerchantReminded {
                merchant_id,
                order_id,
                message,
            },
            Event::OfferClosed {
                order_id,
                offer_id,
                reason: OfferCloseReason::Expired,
                ..
            } => OrderNotice::OfferExpired { order_id, offer_id },
            _ => return None,
        })
    }
}

/// To a rider actor (`ProposeOffer`, `CloseOffer`, `OrderAssigned`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RiderMsg {
    Propose {
        offer: Offer,
        order_id: OrderId,
    },
    Close {
        offer_id: OfferId,
        reason: OfferCloseReason,
    },
    Assigned {
        order: Order,
    },
    Unassigned {
        order_id: OrderId,
        reason: UnassignReason,
    },
    Cancelled {
        order_id: OrderId,
    },
    Changed {
        order: Order,
    },
    Remind {
        order_id: OrderId,
        message: String,
    },
    CheckAssignable,
    /// `GetRider`: the rider as REST shows it.
    View,
    /// `HandOver`: the rider's socket opened on the sender; the actor stops here and its
    /// state goes there.
    HandOver,
    /// A tracking app's fix that reached another node (docs/cluster.md, "Tracking apps"):
    /// into the rider's latest-fix-wins slot here, answered with its verdict.
    TrackerFix {
        raw: RawFix,
        go_online: bool,
    },
}

/// To an order actor (`GetOrder`, `ClaimOffer`, `RiderReport`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrderMsg {
    Get,
    Trace,
    WasOffered {
        rider_id: RiderId,
    },
    Command {
        cmd: OrderCommand,
    },
    AssignByDispatcher {
        rider_id: RiderId,
        fix: Option<GpsFix>,
    },
    Claim {
        offer_id: OfferId,
        rider_id: RiderId,
        fix: Option<GpsFix>,
    },
    Decline {
        offer_id: OfferId,
        rider_id: RiderId,
    },
    Report {
        rider_id: RiderId,
        report: ReportKind,
    },
    RiderLost {
        rider_id: RiderId,
    },
    RiderMoved {
        rider_id: RiderId,
        fix: GpsFix,
    },
    LegClosed {
        offer_id: OfferId,
        rider_id: RiderId,
        reason: OfferCloseReason,
    },
}

/// What a message answers.
#[allow(clippy::large_enum_variant)] // as `Call`: one answer, dropped once read
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// Delivered; the message answers nothing.
    Done,
    Bool {
        value: bool,
    },
    Order {
        result: Result<Order, EngineError>,
    },
    Fix {
        result: Result<Option<GpsFix>, EngineError>,
    },
    Trace {
        entries: Vec<TraceEntry>,
    },
    Rider {
        view: RiderView,
    },
    RiderState {
        state: Box<RiderState>,
    },
    /// A resolution's outcome on the desk holding the escalation.
    Escalation {
        result: Result<Escalation, EngineError>,
    },
    /// A tracker fix's verdict; None: a newer fix of the rider took its place first.
    Verdict {
        verdict: Option<FixVerdict>,
    },
    /// The actor is not on the node asked (moved, stopped, or never there).
    NotHere,
    /// Not delivered: the node did not answer, or the actor stopped meanwhile.
    Failed {
        reason: String,
    },
}

impl Answer {
    pub fn failed(reason: impl std::fmt::Display) -> Answer {
        Answer::Failed {
            reason: reason.to_string(),
        }
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            serde_json::to_string(&Answer::failed(format!("encode: {e}"))).expect("plain")
        })
    }

    pub fn decode(s: &str) -> Answer {
        serde_json::from_str(s).unwrap_or_else(|e| Answer::failed(format!("decode: {e}")))
    }

    /// The answer of a message that returns an order.
    pub fn into_order(self) -> Result<Order, EngineError> {
        match self {
            Answer::Order { result } => result,
            Answer::NotHere => Err(EngineError::Unavailable(
                "the order moved to another node; retry".into(),
            )),
            Answer::Failed { reason } => Err(EngineError::Unavailable(format!(
                "engine actor unavailable: {reason}"
            ))),
            other => Err(EngineError::Unavailable(format!(
                "unexpected answer: {other:?}"
            ))),
        }
    }
}

impl Call {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("messages encode")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::tests::sample_order;

    #[test]
    fn calls_and_answers_round_trip() {
        let order = sample_order();
        let calls = [
            Call::Rider {
                rider_id: RiderId::generate(),
                msg: RiderMsg::Assigned {
                    order: order.clone(),
                },
            },
            Call::Order {
                order_id: order.order_id.clone(),
                msg: OrderMsg::Report {
                    rider_id: RiderId::generate(),
                    report: ReportKind::Failed("flat tyre".into()),
                },
            },
            Call::Order {
                order_id: order.order_id.clone(),
                msg: OrderMsg::Command {
                    cmd: OrderCommand::Pay {
                        payment_ref: "p1".into(),
                    },
                },
            },
        ];
        let fleet = Call::Fleet {
            changes: vec![
                Change::Place(crate::matcher::Placement {
                    rider_id: RiderId::generate(),
                    point: order.dropoff,
                    available: true,
                    busy_until: None,
                    shift_end_ms: None,
                }),
                Change::Remove(RiderId::generate()),
            ],
        };
        let escalation = crate::domain::escalation::Escalation {
            escalation_id: EscalationId::generate(),
            kind: crate::domain::escalation::EscalationKind::NoRider,
            level: 2,
            order_id: Some(order.order_id.clone()),
            rider_id: None,
            opened_ms: 1,
            resolved_ms: None,
            resolved_by: None,
            message: "no rider".into(),
            note: None,
        };
        let alerts = [
            Call::Escalations {
                escalations: vec![std::sync::Arc::new(escalation.clone())],
            },
            Call::ResolveEscalation {
                escalation_id: escalation.escalation_id.clone(),
                note: Some("called".into()),
            },
        ];
        let notices = Call::OrderNotices {
            notices: vec![
                OrderNotice::RiderArriving {
                    order_id: order.order_id.clone(),
                    merchant_id: order.merchant_id.clone(),
                    eta_s: 30,
                },
                OrderNotice::MerchantReminded {
                    merchant_id: order.merchant_id.clone(),
                    order_id: order.order_id.clone(),
                    message: "waiting".into(),
                },
                OrderNotice::OfferExpired {
                    order_id: order.order_id.clone(),
                    offer_id: OfferId::generate(),
                },
                OrderNotice::RiderMovedForOrder {
                    order_id: order.order_id.clone(),
                    customer_id: order.customer_id.clone(),
                    merchant_id: order.merchant_id.clone(),
                    rider_id: RiderId::generate(),
                    location: order.dropoff,
                    ts_ms: 5,
                    eta_s: 60,
                },
            ],
        };
        for c in calls.into_iter().chain([fleet, notices]).chain(alerts) {
            assert_eq!(serde_json::from_str::<Call>(&c.encode()).unwrap(), c);
        }
        for a in [
            Answer::Order {
                result: Err(EngineError::OfferNotAvailable),
            },
            Answer::Order { result: Ok(order) },
            Answer::NotHere,
            Answer::Escalation {
                result: Ok(escalation),
            },
            Answer::Escalation {
                result: Err(EngineError::NotFound("escalation e_1".into())),
            },
        ] {
            assert_eq!(Answer::decode(&a.encode()), a);
        }
        assert!(matches!(Answer::decode("nonsense"), Answer::Failed { .. }));
    }

    #[test]
    fn a_notice_of_a_kind_this_node_does_not_know_leaves_the_rest_of_its_note() {
        let known = OrderNotice::RiderArriving {
            order_id: OrderId::generate(),
            merchant_id: MerchantId::parse("m_1").unwrap(),
            eta_s: 30,
        };
        let note = Call::OrderNotices {
            notices: vec![known.clone()],
        }
        .encode();
        // A newer node's note: a kind unknown here before the known one.
        let newer = note.replacen(
            "\"notices\":[",
            "\"notices\":[{\"type\":\"rider_waved\",\"order_id\":\"o_1\"},",
            1,
        );
        assert_ne!(newer, note);
        assert_eq!(
            serde_json::from_str::<Call>(&newer).unwrap(),
            Call::OrderNotices {
                notices: vec![OrderNotice::Unknown, known]
            }
        );
    }
}
