//! The messages the engine's actors speak to each other, and the rider app's wire frames,
//! in one place. Order and rider actors both depend on this module and never on each
//! other, so the arrows between actors run one way: actor → protocol.
//!
//! Naming (docs/architecture.md): commands are imperative (`ClaimOffer`), queries
//! `Get…`, notices past tense (`OrderAssigned`).

use crate::domain::gps::{FixVerdict, GpsFix, RawFix};
use crate::domain::offers::{CandidateTrace, Offer, OfferCloseReason, OfferLeg, TraceEntry};
use crate::domain::order::{Order, OrderCommand};
use crate::domain::rider::{RiderStatus, RiderView};
use crate::domain::{GeoPoint, OfferId, OrderId, RiderId};
use crate::error::EngineError;
use crate::fix_slot::Ticket;
use crate::outbox::Outbox;
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

// ---- the rider app's frames (docs/protocol.md, "Server → rider", "Rider → server") ----

/// Why an order was taken from a rider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UnassignReason {
    Reassigned,
    RiderLost,
    Released,
    Dispatcher,
}

/// What the rider app is told (docs/protocol.md, "Server → rider").
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RiderNotice {
    Welcome {
        rider_id: RiderId,
        status: RiderStatus,
        location_interval_s: f64,
        orders: Vec<Order>,
        offer: Option<Offer>,
    },
    Offer(Offer),
    Assigned {
        order: Order,
    },
    OrderUpdated {
        order: Order,
    },
    OfferClosed {
        offer_id: OfferId,
        reason: OfferCloseReason,
    },
    OrderCancelled {
        order_id: OrderId,
    },
    Unassigned {
        order_id: OrderId,
        reason: UnassignReason,
    },
    Reminder {
        order_id: OrderId,
        message: String,
    },
    Error {
        code: String,
        message: String,
    },
}

impl RiderNotice {
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        RiderNotice::Error {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// What the rider app says (docs/protocol.md, "Rider → server"), already parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum RiderCommand {
    Location(RawFix),
    SetOnline(bool),
    /// When the rider's shift ends (`None`: open-ended). The planner offers no pickup after it.
    Shift {
        end_ms: Option<u64>,
    },
    Accept {
        offer_id: OfferId,
    },
    Decline {
        offer_id: OfferId,
    },
    PickedUp {
        order_id: OrderId,
    },
    Delivered {
        order_id: OrderId,
    },
    Failed {
        order_id: OrderId,
        reason: String,
    },
    Release {
        order_id: OrderId,
    },
}

// ---- to a RiderActor, from its session ----

/// Attaches a session; the rider's `welcome` is its first frame. A second session replaces
/// (closes) the first.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachSession(pub Outbox<RiderNotice>);

#[derive(Message)]
#[rtype(result = "()")]
pub struct DetachSession(pub Outbox<RiderNotice>);

/// A command of the rider's other than a GPS fix (those come as `FixWaiting`, or as
/// `FixAhead` when a command follows them), in the order sent (`Engine::rider_command`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromRider(pub RiderCommand);

/// A fix waits in the rider's latest-fix-wins slot (`crate::fix_slot`): the actor takes
/// it with this ticket. One notice per fix that found the slot empty.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FixWaiting(pub Ticket);

/// Where a fix came from, and so where its verdict goes.
#[derive(Debug)]
pub enum FixOrigin {
    /// The rider socket: a rejection is told to the rider as `invalid_location`.
    Socket,
    /// A tracking app (docs/protocol.md, "Tracking apps"): the verdict goes back to the
    /// caller waiting on `verdict`, never to the rider's socket (the rider did not send
    /// it there). A fix replaced in the slot by a newer one drops `verdict` unanswered.
    /// `go_online` (`ingest.sets_online`): an accepted fix puts an offline rider online.
    Tracker {
        verdict: oneshot::Sender<FixVerdict>,
        go_online: bool,
    },
}

/// What a rider's latest-fix-wins slot holds: a fix and its origin.
#[derive(Debug)]
pub struct PendingFix {
    pub raw: RawFix,
    pub origin: FixOrigin,
}

/// A fix taken out of the slot because a command of the rider's came after it: queued
/// just ahead of that command (`Engine::rider_command`), with its origin.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FixAhead(pub PendingFix);

#[derive(Message)]
#[rtype(result = "RiderView")]
pub struct GetRider;

/// The rider's socket opened on another node (docs/cluster.md): the actor leaves the
/// matcher, closes its session, stops, and answers its state for the new node.
#[derive(Message)]
#[rtype(result = "crate::domain::rider::RiderState")]
pub struct HandOver;

// ---- to a RiderActor, from order actors and the engine ----

/// An order proposes an offer; the rider takes it only when it may hold one (idle, or busy
/// with work ending within `dispatch.next_job_s`). Every order of a bundle proposes the
/// same offer id; the rider shows the offer once all of them have. Returns whether it did.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct ProposeOffer(pub Offer, /** the order proposing it */ pub OrderId);

#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseOffer {
    pub offer_id: OfferId,
    pub reason: OfferCloseReason,
}

/// The dispatcher gave this rider an order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct OrderAssigned(pub Order);

#[derive(Message)]
#[rtype(result = "()")]
pub struct OrderUnassigned {
    pub order_id: OrderId,
    pub reason: UnassignReason,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct OrderCancelled(pub OrderId);

/// A change the rider should see (ready, failed by the dispatcher…).
#[derive(Message)]
#[rtype(result = "()")]
pub struct OrderChanged(pub Order);

#[derive(Message)]
#[rtype(result = "()")]
pub struct RemindRider {
    pub order_id: OrderId,
    pub message: String,
}

/// May the dispatcher assign this rider an order? (connected, online, not stale)
/// Answers the rider's last accepted fix.
#[derive(Message)]
#[rtype(result = "Result<Option<GpsFix>, EngineError>")]
pub struct CheckAssignable;

// ---- to an OrderActor ----

#[derive(Message)]
#[rtype(result = "Order")]
pub struct GetOrder;

#[derive(Message)]
#[rtype(result = "Vec<TraceEntry>")]
pub struct GetTrace;

/// Was this order ever offered to the rider? (A rider may read such an order.)
#[derive(Message)]
#[rtype(result = "bool")]
pub struct WasOffered(pub RiderId);

/// Another engine moved this order (compare-and-set conflict): stop owning it. Later
/// calls for it read the stored record.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Relinquish;

/// This node lost zone `0` (docs/cluster.md): the order stops as on `Relinquish` if its
/// pickup is in that zone.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RelinquishIn(pub crate::domain::ZoneId);

/// A command from REST (customer, merchant or dispatcher), or from the engine.
#[derive(Message)]
#[rtype(result = "Result<Order, EngineError>")]
pub struct Command(pub OrderCommand);

/// Assignment by the dispatcher (the rider was checked first).
#[derive(Message)]
#[rtype(result = "Result<Order, EngineError>")]
pub struct AssignByDispatcher {
    pub rider_id: RiderId,
    /// The rider's last accepted fix, so the order has an ETA from the start.
    pub fix: Option<GpsFix>,
}

/// A rider accepts an offer. First accept wins.
#[derive(Message)]
#[rtype(result = "Result<Order, EngineError>")]
pub struct ClaimOffer {
    pub offer_id: OfferId,
    pub rider_id: RiderId,
    /// The rider's last accepted fix, so the order has an ETA from the start.
    pub fix: Option<GpsFix>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct DeclineOffer {
    pub offer_id: OfferId,
    pub rider_id: RiderId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportKind {
    PickedUp,
    Delivered,
    Failed(String),
    Release,
}

#[derive(Message)]
#[rtype(result = "Result<Order, EngineError>")]
pub struct RiderReport {
    pub rider_id: RiderId,
    pub kind: ReportKind,
}

/// The rider holding this order has been silent for `rider_lost_s`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RiderLost {
    pub rider_id: RiderId,
}

/// An accepted fix of the rider holding this order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RiderMoved {
    pub rider_id: RiderId,
    pub fix: GpsFix,
}

/// The planner chose `rider_id` for this order (`dispatch.policy = "batch"`): the order
/// offers itself to that rider, with the usual expiry, one winner and decline memory.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Planned {
    pub rider_id: RiderId,
    pub location: GeoPoint,
    pub distance_m: f64,
    /// The round, in words, for the order's trace.
    pub event: String,
    /// The riders priced for this order and what each would cost.
    pub candidates: Vec<CandidateTrace>,
    /// The offer's id, shared by every order of a bundle: the rider sees one offer.
    pub offer_id: OfferId,
    /// Every order of the offer in drop-off sequence (this one among them).
    pub legs: Vec<OfferLeg>,
}

/// The rider closed a bundle offer this order is part of, because of another of its
/// orders (expired, withdrawn, cancelled): this order's part of the offer closes too, with
/// `reason`, and the order is dispatched again. Declines come as `DeclineOffer`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LegClosed {
    pub offer_id: OfferId,
    pub rider_id: RiderId,
    pub reason: OfferCloseReason,
}
