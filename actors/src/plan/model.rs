//! What a planning round takes in and gives back. Plain data: the caller (the planner
//! actor, the replay, a test) fills the inputs; [`super::solve`] returns a [`Plan`].
//!
//! Times are engine milliseconds (`…_ms`), costs are integer milliseconds of weighted
//! customer time, so the assignment solver works on exact integers.

use crate::domain::{GeoPoint, MerchantId, OrderId, RiderId};

/// An order waiting for a rider.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingOrder {
    pub order_id: OrderId,
    pub merchant_id: MerchantId,
    /// The merchant's location; every order of one merchant has the same pickup.
    pub pickup: GeoPoint,
    pub dropoff: GeoPoint,
    /// The click: click-to-door is counted from here (placement or merchant acceptance,
    /// whichever the caller measures the customer's wait from).
    pub placed_ms: u64,
    /// Planned food-ready time; the rider cannot pick up before it.
    pub ready_at_ms: u64,
    /// The latest time this order must be offered (shared/PROTOCOL.md: no later than
    /// `ready_at_ms` minus the best candidate's travel time). From then on the round must
    /// give it a rider if any candidate can take it.
    pub due_ms: u64,
    /// Riders the R-tree found near the merchant, minus those that declined this order.
    /// The planner never considers any other rider for it, which keeps a round local.
    pub candidate_riders: Vec<RiderId>,
}

/// A rider as the planner sees it: when and where it is next free.
#[derive(Debug, Clone, PartialEq)]
pub struct FreeRider {
    pub rider_id: RiderId,
    /// An idle rider: now (or any earlier time). A busy rider: the projected end of the
    /// work in hand, from its route.
    pub free_at_ms: u64,
    /// Where the rider is at `free_at_ms`: an idle rider's position, a busy rider's last
    /// drop-off.
    pub free_at: GeoPoint,
    /// A rider takes no pickup after this (end of shift); `None`: no limit.
    pub shift_end_ms: Option<u64>,
}

/// Everything one round looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanInput {
    pub now_ms: u64,
    pub orders: Vec<WaitingOrder>,
    pub riders: Vec<FreeRider>,
}

/// How riders move and how long handovers take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TravelModel {
    /// Straight-line travel speed (like `DispatchConfig::speed_mps`).
    pub speed_mps: f64,
    /// Time at the merchant; the pickup itself is in the middle of it (MDRP convention:
    /// pickup no earlier than arrival + half of it, departure half of it after pickup).
    pub pickup_service_ms: u64,
    /// Time at each customer; the handover is in the middle of it.
    pub dropoff_service_ms: u64,
}

impl TravelModel {
    /// A travel model at `speed_mps` with the default service times.
    pub fn with_speed(speed_mps: f64) -> Self {
        Self {
            speed_mps,
            ..Self::default()
        }
    }
}

impl Default for TravelModel {
    fn default() -> Self {
        Self {
            speed_mps: 5.0,
            pickup_service_ms: 240_000,
            dropoff_service_ms: 240_000,
        }
    }
}

/// The planner's weights and limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanConfig {
    /// Time until the next round: "no rider this round" is priced as the best this bundle
    /// could get that much later.
    pub round_ms: u64,
    /// Orders whose food is ready later than now + this are not planned this round (unless
    /// due): committing a rider that early only takes it away from closer work.
    pub ready_horizon_ms: u64,
    /// Extra weight of each millisecond food waits for the rider (pickup after ready), on
    /// top of the click-to-door it already adds: cold food is worse than a late start.
    pub food_wait_weight: f64,
    /// Weight of each millisecond the rider stands at the merchant before the food is
    /// ready: that time could serve another order, so arriving early is not free.
    pub rider_wait_weight: f64,
    /// Option value of keeping an order uncommitted for one more round, per order: a
    /// better rider or a bundle partner may appear. Committing now must beat waiting by
    /// more than this.
    pub keep_open_ms: i64,
    /// Urgency of an order whose food is already waiting: each millisecond since its ready
    /// time raises the price of leaving it another round by this much, so with more
    /// orders than riders the longest-waiting food goes first.
    pub waited_weight: f64,
    /// Most orders one bundle may hold.
    pub max_orders_per_bundle: usize,
    /// Orders bundle only when their ready times are at most this far apart.
    pub max_ready_gap_ms: u64,
    /// A bundle is kept only if no order's projected click-to-door gets worse by more than
    /// this compared with being delivered alone.
    pub max_extra_delay_ms: u64,
    /// Size bundles by supply: at most ceil(orders / riders) orders each (Reyes et al.
    /// 2018), so orders are bundled when riders are short and go alone when riders are
    /// plentiful. Off: bundles up to `max_orders_per_bundle` whenever they fit.
    pub bundle_by_supply: bool,
}

impl Default for PlanConfig {
    fn default() -> Self {
        Self {
            round_ms: 30_000,
            ready_horizon_ms: 20 * 60_000,
            food_wait_weight: 1.0,
            rider_wait_weight: 0.5,
            keep_open_ms: 5_000,
            waited_weight: 1.0,
            max_orders_per_bundle: 3,
            // Wide on purpose: bundles form only when riders are short (sized by supply),
            // and then a rider carrying two orders beats an order waiting for a rider. On
            // the replay, 5/10 min left 5.7 % of 4o100t100s1p100 undelivered, 30/45 min
            // 0.2 % (docs/dispatch.md, "Bundles").
            max_ready_gap_ms: 30 * 60_000,
            max_extra_delay_ms: 45 * 60_000,
            bundle_by_supply: true,
        }
    }
}

/// The cost of giving one bundle to one rider, term by term (for the decision trace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CostTerms {
    /// Sum over the bundle's orders of projected drop-off minus click.
    pub click_to_door_ms: i64,
    /// Sum over the bundle's orders of projected pickup minus ready time.
    pub food_wait_ms: i64,
    /// Time the rider stands at the merchant before the food is ready.
    pub rider_wait_ms: i64,
    /// What the solver minimises: click-to-door plus the weighted waits.
    pub total: i64,
}

/// One candidate rider for a bundle and what it would cost.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateCost {
    pub rider_id: RiderId,
    pub cost: CostTerms,
}

/// The price of "no rider this round" for a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitCost {
    /// The best total any candidate would cost one round later (`None`: no candidate).
    pub later_best: Option<i64>,
    /// Urgency added for food already waiting.
    pub waited: i64,
    /// Option value subtracted for keeping the orders open.
    pub keep_open: i64,
    /// An order of the bundle is due: it must get a rider if any candidate can take it.
    pub forced: bool,
    /// `later_best + waited - keep_open` (the solver ranks forced bundles above all of it).
    pub total: i64,
}

/// Why a bundle was or was not given a rider: every candidate with its cost, and the price
/// of waiting, as the solver saw them.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionTrace {
    pub candidates: Vec<CandidateCost>,
    pub wait: Option<WaitCost>,
}

/// One (rider, bundle) the round chose.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRoute {
    pub rider_id: RiderId,
    pub merchant_id: MerchantId,
    /// The orders in drop-off sequence.
    pub orders: Vec<OrderId>,
    /// Projected arrival at the merchant.
    pub arrive_ms: u64,
    /// Projected pickup (no earlier than every order's ready time).
    pub pickup_ms: u64,
    /// Projected handover of each order, in the sequence of `orders`.
    pub dropoff_ms: Vec<u64>,
    pub cost: CostTerms,
    pub trace: DecisionTrace,
}

/// Why orders were left without a rider this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// Food ready beyond the horizon and not due yet.
    NotReadySoon,
    /// No candidate rider can take it (none found, or every shift ends first).
    NoCandidate,
    /// Waiting a round was priced below every candidate: a better rider may come.
    Deferred,
    /// A candidate would have been worth it, but went to other orders this round.
    RidersTaken,
}

/// Orders the round left waiting: a bundle it built (or one order), and why.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftWaiting {
    pub orders: Vec<OrderId>,
    pub reason: WaitReason,
    pub trace: DecisionTrace,
}

/// A round's outcome.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub routes: Vec<PlannedRoute>,
    pub waiting: Vec<LeftWaiting>,
}
