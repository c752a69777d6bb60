//! The order and its state machine (docs/protocol.md, "Order state machine").
//!
//! Every command is checked against the current status and the caller; a refused command
//! returns the reason and leaves the order untouched. `version` grows on every change of
//! status, rider, ready or items (not of `eta_s`).

use super::ids::{CustomerId, ItemId, MerchantId, OrderId, RiderId};
use super::GeoPoint;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Accepted,
    Assigned,
    PickedUp,
    Delivered,
    Cancelled,
    Failed,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 8] = [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::Accepted,
        OrderStatus::Assigned,
        OrderStatus::PickedUp,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
        OrderStatus::Failed,
    ];

    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Delivered | OrderStatus::Cancelled | OrderStatus::Failed
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Accepted => "accepted",
            OrderStatus::Assigned => "assigned",
            OrderStatus::PickedUp => "picked_up",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderLine {
    pub item_id: ItemId,
    pub name: String,
    pub qty: u32,
    pub price_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pickup {
    pub lat: f64,
    pub lon: f64,
    pub merchant_id: MerchantId,
    pub name: String,
}

impl Pickup {
    pub fn point(&self) -> GeoPoint {
        GeoPoint::new(self.lat, self.lon).expect("pickup built from a GeoPoint")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    pub status: OrderStatus,
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Order {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub merchant_id: MerchantId,
    pub rider_id: Option<RiderId>,
    pub status: OrderStatus,
    pub version: u64,
    pub items: Vec<OrderLine>,
    pub total_cents: i64,
    pub pickup: Pickup,
    pub dropoff: GeoPoint,
    pub ready: bool,
    pub ready_at_ms: Option<u64>,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub eta_s: Option<u64>,
    pub timeline: Vec<TimelineEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Who asks for a change; the state machine checks it where the contract says who may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    Customer,
    Merchant,
    Rider(RiderId),
    Dispatcher,
    /// The engine itself: timers, dispatch.
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderCommand {
    Pay { payment_ref: String },
    Accept { prep_time_s: u64 },
    Reject { reason: String },
    MarkReady,
    Cancel { by: Actor, reason: Option<String> },
    Assign { rider_id: RiderId },
    Unassign,
    PickUp { rider_id: RiderId },
    Deliver { rider_id: RiderId },
    Fail { by: Actor, reason: String },
}

impl OrderCommand {
    pub fn name(&self) -> &'static str {
        match self {
            OrderCommand::Pay { .. } => "pay",
            OrderCommand::Accept { .. } => "accept",
            OrderCommand::Reject { .. } => "reject",
            OrderCommand::MarkReady => "ready",
            OrderCommand::Cancel { .. } => "cancel",
            OrderCommand::Assign { .. } => "assign",
            OrderCommand::Unassign => "unassign",
            OrderCommand::PickUp { .. } => "picked_up",
            OrderCommand::Deliver { .. } => "delivered",
            OrderCommand::Fail { .. } => "fail",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionError {
    /// The command is not legal in the current status.
    Illegal {
        from: OrderStatus,
        command: &'static str,
    },
    /// The rider named is not the one holding the order.
    NotYourOrder,
    /// The caller's role may not issue this command.
    NotAllowed { command: &'static str },
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionError::Illegal { from, command } => {
                write!(f, "cannot {command} an order that is {from}")
            }
            TransitionError::NotYourOrder => f.write_str("this order is not assigned to you"),
            TransitionError::NotAllowed { command } => {
                write!(f, "you may not {command} this order")
            }
        }
    }
}

/// What a successful command changed, for the actor to act upon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: OrderStatus,
    pub to: OrderStatus,
    /// The rider that held the order before, if the command took it away or replaced it.
    pub previous_rider: Option<RiderId>,
    /// False for an accepted no-op (e.g. `ready` twice): nothing to persist or announce.
    pub changed: bool,
}

pub struct NewOrder {
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub merchant_id: MerchantId,
    pub items: Vec<OrderLine>,
    pub pickup: Pickup,
    pub dropoff: GeoPoint,
}

impl Order {
    pub fn new(n: NewOrder, now_ms: u64) -> Self {
        let total_cents = n.items.iter().map(|l| l.price_cents * l.qty as i64).sum();
        Order {
            order_id: n.order_id,
            customer_id: n.customer_id,
            merchant_id: n.merchant_id,
            rider_id: None,
            status: OrderStatus::PendingPayment,
            version: 1,
            items: n.items,
            total_cents,
            pickup: n.pickup,
            dropoff: n.dropoff,
            ready: false,
            ready_at_ms: None,
            created_ms: now_ms,
            updated_ms: now_ms,
            eta_s: None,
            timeline: vec![TimelineEntry {
                status: OrderStatus::PendingPayment,
                at_ms: now_ms,
            }],
            payment_ref: None,
            reason: None,
        }
    }

    /// Applies `cmd` at `now_ms`, or refuses it and changes nothing.
    pub fn apply(&mut self, cmd: OrderCommand, now_ms: u64) -> Result<Transition, TransitionError> {
        use OrderStatus::*;
        let from = self.status;
        let illegal = || TransitionError::Illegal {
            from,
            command: cmd.name(),
        };
        if from.is_final() {
            return Err(illegal());
        }
        // Picking up and delivering: only from `status`, and only by the order's own rider.
        let own_rider_from = |status: OrderStatus, rider_id: &RiderId, held: Option<&RiderId>| {
            if from != status {
                Err(illegal())
            } else if held != Some(rider_id) {
                Err(TransitionError::NotYourOrder)
            } else {
                Ok(())
            }
        };
        let mut previous_rider = None;
        let mut changed = true;
        let to = match &cmd {
            OrderCommand::Pay { payment_ref } => {
                if from != PendingPayment {
                    // The same payment again is a retry whose first answer was lost (the
                    // server died between storing the change and answering): no-op.
                    if self.payment_ref.as_ref() == Some(payment_ref) {
                        changed = false;
                        from
                    } else {
                        return Err(illegal());
                    }
                } else {
                    self.payment_ref = Some(payment_ref.clone());
                    Paid
                }
            }
            OrderCommand::Accept { prep_time_s } => {
                if from != Paid {
                    return Err(illegal());
                }
                self.ready_at_ms = Some(now_ms + prep_time_s * 1000);
                Accepted
            }
            OrderCommand::Reject { reason } => {
                if from != Paid {
                    return Err(illegal());
                }
                self.reason = Some(reason.clone());
                Cancelled
            }
            OrderCommand::MarkReady => {
                if !matches!(from, Accepted | Assigned) {
                    return Err(illegal());
                }
                if self.ready {
                    changed = false;
                } else {
                    self.ready = true;
                    self.ready_at_ms = Some(self.ready_at_ms.map_or(now_ms, |t| t.min(now_ms)));
                }
                from
            }
            OrderCommand::Cancel { by, reason } => {
                let allowed = match by {
                    Actor::Customer => matches!(from, PendingPayment | Paid),
                    Actor::Dispatcher => {
                        matches!(from, PendingPayment | Paid | Accepted | Assigned)
                    }
                    Actor::System => matches!(from, Paid),
                    Actor::Merchant | Actor::Rider(_) => {
                        return Err(TransitionError::NotAllowed { command: "cancel" })
                    }
                };
                if !allowed {
                    return Err(illegal());
                }
                previous_rider = self.rider_id.take();
                self.reason = reason.clone();
                Cancelled
            }
            OrderCommand::Assign { rider_id } => {
                match from {
                    Accepted => {}
                    Assigned if self.rider_id.as_ref() == Some(rider_id) => changed = false,
                    Assigned => previous_rider = self.rider_id.clone(),
                    _ => return Err(illegal()),
                }
                self.rider_id = Some(rider_id.clone());
                Assigned
            }
            OrderCommand::Unassign => {
                if from != Assigned {
                    return Err(illegal());
                }
                previous_rider = self.rider_id.take();
                Accepted
            }
            OrderCommand::PickUp { rider_id } => {
                own_rider_from(Assigned, rider_id, self.rider_id.as_ref())?;
                if !self.ready {
                    self.ready = true;
                    self.ready_at_ms = Some(self.ready_at_ms.map_or(now_ms, |t| t.min(now_ms)));
                }
                PickedUp
            }
            OrderCommand::Deliver { rider_id } => {
                own_rider_from(PickedUp, rider_id, self.rider_id.as_ref())?;
                Delivered
            }
            OrderCommand::Fail { by, reason } => {
                if from != PickedUp {
                    return Err(illegal());
                }
                match by {
                    Actor::Dispatcher => {}
                    Actor::Rider(r) if self.rider_id.as_ref() == Some(r) => {}
                    Actor::Rider(_) => return Err(TransitionError::NotYourOrder),
                    _ => return Err(TransitionError::NotAllowed { command: "fail" }),
                }
                self.reason = Some(reason.clone());
                Failed
            }
        };
        if changed {
            self.status = to;
            self.version += 1;
            self.updated_ms = now_ms;
            if to != from {
                self.timeline.push(TimelineEntry {
                    status: to,
                    at_ms: now_ms,
                });
            }
            if !matches!(to, Assigned | PickedUp) {
                self.eta_s = None;
            }
        }
        Ok(Transition {
            from,
            to,
            previous_rider,
            changed,
        })
    }

    /// When the status was entered last, if ever.
    pub fn entered_ms(&self, status: OrderStatus) -> Option<u64> {
        self.timeline
            .iter()
            .rev()
            .find(|e| e.status == status)
            .map(|e| e.at_ms)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample_order() -> Order {
        let m = MerchantId::parse("m_test").unwrap();
        Order::new(
            NewOrder {
                order_id: OrderId::parse("o_test").unwrap(),
                customer_id: CustomerId::parse("c_test").unwrap(),
                merchant_id: m.clone(),
                items: vec![
                    OrderLine {
                        item_id: ItemId::parse("i_a").unwrap(),
                        name: "Noodles".into(),
                        qty: 2,
                        price_cents: 1250,
                    },
                    OrderLine {
                        item_id: ItemId::parse("i_b").unwrap(),
                        name: "Tea".into(),
                        qty: 1,
                        price_cents: 300,
                    },
                ],
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

    fn rider(s: &str) -> RiderId {
        RiderId::parse(s).unwrap()
    }

    /// The sample order paid at 2 and accepted at 3 with no preparation time.
    fn accepted_order() -> Order {
        let mut o = sample_order();
        o.apply(
            OrderCommand::Pay {
                payment_ref: "p".into(),
            },
            2,
        )
        .unwrap();
        o.apply(OrderCommand::Accept { prep_time_s: 0 }, 3).unwrap();
        o
    }

    /// The accepted order assigned to `r_1` at 4.
    fn assigned_order() -> Order {
        let mut o = accepted_order();
        o.apply(
            OrderCommand::Assign {
                rider_id: rider("r_1"),
            },
            4,
        )
        .unwrap();
        o
    }

    #[test]
    fn total_is_sum_of_price_times_qty() {
        assert_eq!(sample_order().total_cents, 2800);
    }

    #[test]
    fn happy_path_bumps_version_and_timeline() {
        let mut o = sample_order();
        let r = rider("r_1");
        o.apply(
            OrderCommand::Pay {
                payment_ref: "p".into(),
            },
            2_000,
        )
        .unwrap();
        o.apply(OrderCommand::Accept { prep_time_s: 600 }, 3_000)
            .unwrap();
        assert_eq!(o.ready_at_ms, Some(603_000));
        o.apply(
            OrderCommand::Assign {
                rider_id: r.clone(),
            },
            4_000,
        )
        .unwrap();
        o.apply(OrderCommand::MarkReady, 5_000).unwrap();
        assert_eq!(o.ready_at_ms, Some(5_000));
        o.apply(
            OrderCommand::PickUp {
                rider_id: r.clone(),
            },
            6_000,
        )
        .unwrap();
        o.apply(OrderCommand::Deliver { rider_id: r }, 7_000)
            .unwrap();
        assert_eq!(o.status, OrderStatus::Delivered);
        assert_eq!(o.version, 7);
        let statuses: Vec<_> = o.timeline.iter().map(|e| e.status).collect();
        assert_eq!(
            statuses,
            vec![
                OrderStatus::PendingPayment,
                OrderStatus::Paid,
                OrderStatus::Accepted,
                OrderStatus::Assigned,
                OrderStatus::PickedUp,
                OrderStatus::Delivered
            ]
        );
    }

    #[test]
    fn illegal_commands_change_nothing() {
        let mut o = sample_order();
        let before = o.clone();
        let err = o
            .apply(OrderCommand::Accept { prep_time_s: 1 }, 5)
            .unwrap_err();
        assert_eq!(
            err,
            TransitionError::Illegal {
                from: OrderStatus::PendingPayment,
                command: "accept"
            }
        );
        assert!(o
            .apply(
                OrderCommand::Assign {
                    rider_id: rider("r_1")
                },
                5
            )
            .is_err());
        assert!(o.apply(OrderCommand::MarkReady, 5).is_err());
        assert!(o.apply(OrderCommand::Unassign, 5).is_err());
        assert!(o
            .apply(
                OrderCommand::Fail {
                    by: Actor::Dispatcher,
                    reason: "x".into()
                },
                5
            )
            .is_err());
        assert_eq!(o, before);
    }

    #[test]
    fn final_states_are_immutable() {
        let mut o = sample_order();
        o.apply(
            OrderCommand::Cancel {
                by: Actor::Customer,
                reason: None,
            },
            2,
        )
        .unwrap();
        let before = o.clone();
        for cmd in all_commands() {
            assert!(o.apply(cmd, 3).is_err());
        }
        assert_eq!(o, before);
    }

    #[test]
    fn customer_cannot_cancel_after_accept_but_dispatcher_can_until_pickup() {
        let mut o = accepted_order();
        assert!(o
            .apply(
                OrderCommand::Cancel {
                    by: Actor::Customer,
                    reason: None
                },
                4
            )
            .is_err());
        o.apply(
            OrderCommand::Assign {
                rider_id: rider("r_1"),
            },
            4,
        )
        .unwrap();
        let t = o
            .apply(
                OrderCommand::Cancel {
                    by: Actor::Dispatcher,
                    reason: None,
                },
                5,
            )
            .unwrap();
        assert_eq!(t.previous_rider, Some(rider("r_1")));
        assert_eq!(o.rider_id, None);
        assert_eq!(o.status, OrderStatus::Cancelled);
    }

    #[test]
    fn only_the_assigned_rider_picks_up_and_delivers() {
        let mut o = assigned_order();
        assert_eq!(
            o.apply(
                OrderCommand::PickUp {
                    rider_id: rider("r_2")
                },
                5
            ),
            Err(TransitionError::NotYourOrder)
        );
        o.apply(
            OrderCommand::PickUp {
                rider_id: rider("r_1"),
            },
            5,
        )
        .unwrap();
        assert!(o.ready, "pickup marks the food ready");
        assert!(o
            .apply(
                OrderCommand::Fail {
                    by: Actor::Rider(rider("r_2")),
                    reason: "x".into()
                },
                6
            )
            .is_err());
        o.apply(
            OrderCommand::Fail {
                by: Actor::Rider(rider("r_1")),
                reason: "x".into(),
            },
            6,
        )
        .unwrap();
        assert_eq!(o.status, OrderStatus::Failed);
    }

    #[test]
    fn reassign_and_unassign_report_the_previous_rider() {
        let mut o = assigned_order();
        let t = o
            .apply(
                OrderCommand::Assign {
                    rider_id: rider("r_2"),
                },
                5,
            )
            .unwrap();
        assert_eq!(t.previous_rider, Some(rider("r_1")));
        let v = o.version;
        let same = o
            .apply(
                OrderCommand::Assign {
                    rider_id: rider("r_2"),
                },
                6,
            )
            .unwrap();
        assert!(!same.changed);
        assert_eq!(o.version, v);
        let t = o.apply(OrderCommand::Unassign, 7).unwrap();
        assert_eq!(t.previous_rider, Some(rider("r_2")));
        assert_eq!(o.status, OrderStatus::Accepted);
        assert_eq!(o.rider_id, None);
    }

    #[test]
    fn paying_again_with_the_same_payment_is_a_no_op_another_payment_is_refused() {
        let mut o = assigned_order();
        let v = o.version;
        let again = o
            .apply(
                OrderCommand::Pay {
                    payment_ref: o.payment_ref.clone().expect("paid"),
                },
                9,
            )
            .unwrap();
        assert!(!again.changed);
        assert_eq!((o.status, o.version), (OrderStatus::Assigned, v));
        let other = o.apply(
            OrderCommand::Pay {
                payment_ref: "another".into(),
            },
            10,
        );
        assert!(other.is_err());
    }

    fn all_commands() -> Vec<OrderCommand> {
        vec![
            OrderCommand::Pay {
                payment_ref: "p".into(),
            },
            OrderCommand::Accept { prep_time_s: 60 },
            OrderCommand::Reject { reason: "r".into() },
            OrderCommand::MarkReady,
            OrderCommand::Cancel {
                by: Actor::Customer,
                reason: None,
            },
            OrderCommand::Cancel {
                by: Actor::Dispatcher,
                reason: None,
            },
            OrderCommand::Cancel {
                by: Actor::System,
                reason: None,
            },
            OrderCommand::Assign {
                rider_id: RiderId::parse("r_1").unwrap(),
            },
            OrderCommand::Assign {
                rider_id: RiderId::parse("r_2").unwrap(),
            },
            OrderCommand::Unassign,
            OrderCommand::PickUp {
                rider_id: RiderId::parse("r_1").unwrap(),
            },
            OrderCommand::PickUp {
                rider_id: RiderId::parse("r_2").unwrap(),
            },
            OrderCommand::Deliver {
                rider_id: RiderId::parse("r_1").unwrap(),
            },
            OrderCommand::Deliver {
                rider_id: RiderId::parse("r_2").unwrap(),
            },
            OrderCommand::Fail {
                by: Actor::Dispatcher,
                reason: "f".into(),
            },
            OrderCommand::Fail {
                by: Actor::Rider(RiderId::parse("r_1").unwrap()),
                reason: "f".into(),
            },
        ]
    }

    /// Statuses an order may move to directly from `from` (the contract's arrows).
    fn legal_next(from: OrderStatus) -> &'static [OrderStatus] {
        use OrderStatus::*;
        match from {
            PendingPayment => &[Paid, Cancelled],
            Paid => &[Accepted, Cancelled],
            Accepted => &[Accepted, Assigned, Cancelled],
            Assigned => &[Assigned, PickedUp, Accepted, Cancelled],
            PickedUp => &[Delivered, Failed],
            Delivered | Cancelled | Failed => &[],
        }
    }

    proptest! {
        #[test]
        fn no_sequence_leaves_a_final_state_or_skips_one(
            picks in proptest::collection::vec(0usize..16, 0..40)
        ) {
            let cmds = all_commands();
            let mut o = sample_order();
            let mut now = 10;
            for i in picks {
                now += 1;
                let before = o.clone();
                match o.apply(cmds[i].clone(), now) {
                    Ok(t) => {
                        prop_assert!(!before.status.is_final());
                        if t.changed {
                            prop_assert!(legal_next(before.status).contains(&o.status),
                                "{:?} -> {:?}", before.status, o.status);
                            prop_assert_eq!(o.version, before.version + 1);
                        } else {
                            prop_assert_eq!(&o, &before);
                        }
                    }
                    Err(_) => prop_assert_eq!(&o, &before),
                }
                prop_assert_eq!(o.rider_id.is_some(),
                    matches!(o.status, OrderStatus::Assigned | OrderStatus::PickedUp | OrderStatus::Delivered | OrderStatus::Failed));
            }
        }
    }
}
