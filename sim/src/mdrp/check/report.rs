//! What [`super::check`] finds: the rules (named as mdrp_check.py's categories), one
//! finding, and the report of a whole solution.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// What a finding is about. Names (see [`Rule::name`]) are mdrp_check.py's categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// An assignment without orders.
    Format,
    /// A courier, order or move endpoint the instance does not have (the line is ignored).
    UnknownId,
    /// An order in two assignments, or twice in the orders file.
    DuplicateOrder,
    /// A bundle whose orders come from more than one restaurant.
    MixedRestaurantBundle,
    /// `assignment_time` < an order's `placement_time`.
    AssignedBeforePlacement,
    /// Pickup before an order's `ready_time` (or its placement).
    PickupBeforeReady,
    /// `pickup_time` < `assignment_time`.
    PickupBeforeAssignment,
    /// `pickup_time` > the courier's `off_time`.
    PickupAfterOffTime,
    /// A first departure or a pickup before the courier's `on_time`.
    BeforeOnTime,
    /// The orders file disagrees with the instance (placement, ready) or with the
    /// assignments (pickup, courier).
    OrderFileMismatch,
    /// An order in the orders file that no assignment holds.
    DeliveredNotAssigned,
    /// An assigned order without a drop-off in the orders file.
    AssignedNotDelivered,
    /// A drop-off before its pickup, or the diner visited only before the pickup or the
    /// previous drop-off of the bundle.
    DropoffSequence,
    /// A courier's moves in more than one block (mdrp_check.py: `FORMAT`).
    NonContiguousMoves,
    /// A move's origin is not the previous destination (`0` for the first move).
    RouteDiscontinuity,
    /// A departure before the arrival at that place.
    RouteTiming,
    /// The courier is not at the bundle's restaurant at `pickup_time`.
    NotAtRestaurant,
    /// Pickup less than `s_p/2` after arrival, or departure less than `s_p/2` after pickup.
    PickupService,
    /// A pickup before every drop-off of the courier's previous bundle is done.
    OverlappingAssignments,
    /// The courier is not at the diner at `dropoff_time`, or never goes there.
    NotAtDiner,
    /// Drop-off less than `s_d/2` after arrival, or departure less than `s_d/2` after it.
    DropoffService,
    /// Warning: an assignment before the courier's `on_time`.
    AssignedBeforeOnTime,
    /// Warning: a move towards a restaurant after `off_time`.
    MoveAfterOffTime,
    /// Warning: a drop-off recorded later than `arrival + s_d/2` (allowed; hurts metrics).
    LateDropoffRecord,
    /// Warning: a visit to a diner's location without a drop-off there.
    DinerVisitWithoutDropoff,
}

impl Rule {
    pub fn name(self) -> &'static str {
        use Rule::*;
        match self {
            Format => "FORMAT",
            UnknownId => "UNKNOWN_ID",
            DuplicateOrder => "DUPLICATE_ORDER",
            MixedRestaurantBundle => "MIXED_RESTAURANT_BUNDLE",
            AssignedBeforePlacement => "ASSIGNED_BEFORE_PLACEMENT",
            PickupBeforeReady => "PICKUP_BEFORE_READY",
            PickupBeforeAssignment => "PICKUP_BEFORE_ASSIGNMENT",
            PickupAfterOffTime => "PICKUP_AFTER_OFF_TIME",
            BeforeOnTime => "BEFORE_ON_TIME",
            OrderFileMismatch => "ORDER_FILE_MISMATCH",
            DeliveredNotAssigned => "DELIVERED_NOT_ASSIGNED",
            AssignedNotDelivered => "ASSIGNED_NOT_DELIVERED",
            DropoffSequence => "DROPOFF_SEQUENCE",
            NonContiguousMoves => "NON_CONTIGUOUS_MOVES",
            RouteDiscontinuity => "ROUTE_DISCONTINUITY",
            RouteTiming => "ROUTE_TIMING",
            NotAtRestaurant => "NOT_AT_RESTAURANT",
            PickupService => "PICKUP_SERVICE",
            OverlappingAssignments => "OVERLAPPING_ASSIGNMENTS",
            NotAtDiner => "NOT_AT_DINER",
            DropoffService => "DROPOFF_SERVICE",
            AssignedBeforeOnTime => "ASSIGNED_BEFORE_ON_TIME",
            MoveAfterOffTime => "MOVE_AFTER_OFF_TIME",
            LateDropoffRecord => "LATE_DROPOFF_RECORD",
            DinerVisitWithoutDropoff => "DINER_VISIT_WITHOUT_DROPOFF",
        }
    }

    /// Warnings do not make a solution infeasible.
    pub fn is_warning(self) -> bool {
        use Rule::*;
        matches!(
            self,
            AssignedBeforeOnTime | MoveAfterOffTime | LateDropoffRecord | DinerVisitWithoutDropoff
        )
    }
}

/// One finding: the rule, the courier and order it is about, and the numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub rule: Rule,
    pub courier: Option<String>,
    pub order: Option<String>,
    /// Where (file line) and the numbers.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.rule.name())?;
        if let Some(c) = &self.courier {
            write!(f, " courier {c}")?;
        }
        if let Some(o) = &self.order {
            write!(f, " order {o}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What [`check`] found. Feasible = no violations; warnings are kept apart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub warnings: Vec<Violation>,
}

impl Report {
    pub fn is_feasible(&self) -> bool {
        self.violations.is_empty()
    }

    /// Violations per rule name.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for v in &self.violations {
            *m.entry(v.rule.name()).or_insert(0) += 1;
        }
        m
    }

    /// The rules broken, in [`Rule`] order.
    pub fn rules(&self) -> BTreeSet<Rule> {
        self.violations.iter().map(|v| v.rule).collect()
    }

    /// One line: `feasible (W warnings)` or `INFEASIBLE: K violations (RULE n, ...)`.
    pub fn summary(&self) -> String {
        if self.is_feasible() {
            return format!("feasible ({} warnings)", self.warnings.len());
        }
        let per: Vec<String> = self
            .counts()
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        format!(
            "INFEASIBLE: {} violations ({}), {} warnings",
            self.violations.len(),
            per.join(", "),
            self.warnings.len()
        )
    }

    /// The summary, then at most `per_rule` violations of each rule, one per line.
    pub fn details(&self, per_rule: usize) -> String {
        let mut s = self.summary();
        let mut shown: HashMap<Rule, usize> = HashMap::new();
        for v in &self.violations {
            let n = shown.entry(v.rule).or_insert(0);
            *n += 1;
            if *n <= per_rule {
                s.push_str(&format!("\n  {v}"));
            }
        }
        s
    }

    pub(super) fn add(
        &mut self,
        rule: Rule,
        courier: Option<&str>,
        order: Option<&str>,
        message: String,
    ) {
        let v = Violation {
            rule,
            courier: courier.map(str::to_string),
            order: order.map(str::to_string),
            message,
        };
        if rule.is_warning() {
            self.warnings.push(v);
        } else {
            self.violations.push(v);
        }
    }
}
