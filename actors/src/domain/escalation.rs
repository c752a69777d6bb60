//! Escalations: one open record per (kind, subject); a repeat raises its level; a cleared
//! cause resolves it (`system`); a dispatcher may resolve it by hand.

use super::ids::{EscalationId, OrderId, RiderId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EscalationKind {
    MerchantUnresponsive,
    NoRider,
    PickupLate,
    DeliveryLate,
    RiderSilent,
}

impl EscalationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationKind::MerchantUnresponsive => "merchant_unresponsive",
            EscalationKind::NoRider => "no_rider",
            EscalationKind::PickupLate => "pickup_late",
            EscalationKind::DeliveryLate => "delivery_late",
            EscalationKind::RiderSilent => "rider_silent",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ResolvedBy {
    System,
    Dispatcher,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Escalation {
    pub escalation_id: EscalationId,
    pub kind: EscalationKind,
    pub level: u32,
    pub order_id: Option<OrderId>,
    pub rider_id: Option<RiderId>,
    pub opened_ms: u64,
    pub resolved_ms: Option<u64>,
    pub resolved_by: Option<ResolvedBy>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Escalation {
    pub fn is_open(&self) -> bool {
        self.resolved_ms.is_none()
    }
}

/// What an escalation is about: rider kinds key on the rider, the others on the order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Order(OrderId),
    Rider(RiderId),
}

#[derive(Debug, Default)]
pub struct EscalationBook {
    open: HashMap<(EscalationKind, Subject), EscalationId>,
    all: HashMap<EscalationId, Escalation>,
    /// Opening order, newest last.
    order: Vec<EscalationId>,
}

impl EscalationBook {
    /// Opens an escalation, or raises the level of the open one for the same cause.
    pub fn raise(
        &mut self,
        kind: EscalationKind,
        order_id: Option<OrderId>,
        rider_id: Option<RiderId>,
        message: String,
        now_ms: u64,
    ) -> Escalation {
        let subject = match (kind, &order_id, &rider_id) {
            (EscalationKind::RiderSilent, _, Some(r)) => Subject::Rider(r.clone()),
            (_, Some(o), _) => Subject::Order(o.clone()),
            (_, None, Some(r)) => Subject::Rider(r.clone()),
            (_, None, None) => Subject::Order(OrderId::parse("o_none").expect("valid")),
        };
        if let Some(id) = self.open.get(&(kind, subject.clone())) {
            let e = self.all.get_mut(id).expect("open escalation is stored");
            e.level += 1;
            e.message = message;
            if order_id.is_some() {
                e.order_id = order_id;
            }
            return e.clone();
        }
        let e = Escalation {
            escalation_id: EscalationId::generate(),
            kind,
            level: 1,
            order_id,
            rider_id,
            opened_ms: now_ms,
            resolved_ms: None,
            resolved_by: None,
            message,
            note: None,
        };
        self.open.insert((kind, subject), e.escalation_id.clone());
        self.order.push(e.escalation_id.clone());
        self.all.insert(e.escalation_id.clone(), e.clone());
        e
    }

    /// The cause cleared: resolve the open escalation of this kind for this subject.
    pub fn clear(
        &mut self,
        kind: EscalationKind,
        subject: &Subject,
        now_ms: u64,
    ) -> Option<Escalation> {
        let id = self.open.remove(&(kind, subject.clone()))?;
        let e = self.all.get_mut(&id).expect("open escalation is stored");
        e.resolved_ms = Some(now_ms);
        e.resolved_by = Some(ResolvedBy::System);
        Some(e.clone())
    }

    /// A dispatcher resolves an escalation by hand. Resolving twice returns it unchanged.
    pub fn resolve(
        &mut self,
        id: &EscalationId,
        note: Option<String>,
        now_ms: u64,
    ) -> Option<Escalation> {
        let e = self.all.get_mut(id)?;
        if e.is_open() {
            e.resolved_ms = Some(now_ms);
            e.resolved_by = Some(ResolvedBy::Dispatcher);
            e.note = note;
            self.open.retain(|_, v| v != id);
        }
        Some(e.clone())
    }

    pub fn get(&self, id: &EscalationId) -> Option<&Escalation> {
        self.all.get(id)
    }

    /// Newest first.
    pub fn list(&self, open_only: bool) -> Vec<Escalation> {
        self.order
            .iter()
            .rev()
            .filter_map(|id| self.all.get(id))
            .filter(|e| !open_only || e.is_open())
            .cloned()
            .collect()
    }

    /// Forgets escalations resolved before `before_ms` (they stay in the store); returns
    /// how many went. Open ones always stay.
    pub fn prune_resolved(&mut self, before_ms: u64) -> usize {
        let n = self.all.len();
        self.all
            .retain(|_, e| e.resolved_ms.is_none_or(|at| at >= before_ms));
        let all = &self.all;
        self.order.retain(|id| all.contains_key(id));
        n - self.all.len()
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Restores a record (recovery from a store).
    pub fn restore(&mut self, e: Escalation) {
        if e.is_open() {
            let subject = match (&e.kind, &e.order_id, &e.rider_id) {
                (EscalationKind::RiderSilent, _, Some(r)) => Subject::Rider(r.clone()),
                (_, Some(o), _) => Subject::Order(o.clone()),
                (_, None, Some(r)) => Subject::Rider(r.clone()),
                _ => return,
            };
            self.open.insert((e.kind, subject), e.escalation_id.clone());
        }
        self.order.push(e.escalation_id.clone());
        self.all.insert(e.escalation_id.clone(), e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid() -> OrderId {
        OrderId::parse("o_1").unwrap()
    }

    #[test]
    fn repeat_raises_level_instead_of_opening_anew() {
        let mut b = EscalationBook::default();
        let a = b.raise(EscalationKind::NoRider, Some(oid()), None, "m".into(), 1);
        let a2 = b.raise(EscalationKind::NoRider, Some(oid()), None, "m".into(), 2);
        assert_eq!(a.escalation_id, a2.escalation_id);
        assert_eq!(a2.level, 2);
        assert_eq!(b.list(true).len(), 1);
        // another kind on the same order is its own record
        b.raise(EscalationKind::PickupLate, Some(oid()), None, "m".into(), 3);
        assert_eq!(b.list(true).len(), 2);
    }

    #[test]
    fn cleared_cause_resolves_and_a_new_occurrence_opens_a_new_record() {
        let mut b = EscalationBook::default();
        let a = b.raise(EscalationKind::NoRider, Some(oid()), None, "m".into(), 1);
        let r = b
            .clear(EscalationKind::NoRider, &Subject::Order(oid()), 5)
            .unwrap();
        assert_eq!(r.resolved_by, Some(ResolvedBy::System));
        assert_eq!(r.resolved_ms, Some(5));
        assert!(b
            .clear(EscalationKind::NoRider, &Subject::Order(oid()), 6)
            .is_none());
        let c = b.raise(EscalationKind::NoRider, Some(oid()), None, "m".into(), 7);
        assert_ne!(a.escalation_id, c.escalation_id);
        assert_eq!(c.level, 1);
        assert_eq!(b.list(false).len(), 2);
        assert_eq!(
            b.list(false)[0].escalation_id,
            c.escalation_id,
            "newest first"
        );
    }

    #[test]
    fn resolved_escalations_leave_the_book_after_retention_open_ones_stay() {
        let mut b = EscalationBook::default();
        let old = b.raise(EscalationKind::NoRider, Some(oid()), None, "m".into(), 1);
        b.clear(EscalationKind::NoRider, &Subject::Order(oid()), 10);
        let o2 = OrderId::parse("o_2").unwrap();
        let open = b.raise(
            EscalationKind::PickupLate,
            Some(o2.clone()),
            None,
            "m".into(),
            2,
        );
        let o3 = OrderId::parse("o_3").unwrap();
        b.raise(
            EscalationKind::PickupLate,
            Some(o3.clone()),
            None,
            "m".into(),
            3,
        );
        b.clear(EscalationKind::PickupLate, &Subject::Order(o3), 50);
        assert_eq!(
            b.prune_resolved(20),
            1,
            "only the one resolved before 20 goes"
        );
        assert!(b.get(&old.escalation_id).is_none());
        assert!(b.get(&open.escalation_id).is_some());
        assert_eq!(b.list(false).len(), 2);
        assert_eq!(b.prune_resolved(1000), 1);
        assert_eq!(b.list(false).len(), 1);
        assert_eq!(b.list(true)[0].escalation_id, open.escalation_id);
        // The open one still raises its level in place.
        let again = b.raise(EscalationKind::PickupLate, Some(o2), None, "m".into(), 60);
        assert_eq!((again.escalation_id, again.level), (open.escalation_id, 2));
    }

    #[test]
    fn dispatcher_resolution_is_recorded() {
        let mut b = EscalationBook::default();
        let r = RiderId::parse("r_1").unwrap();
        let a = b.raise(
            EscalationKind::RiderSilent,
            Some(oid()),
            Some(r.clone()),
            "m".into(),
            1,
        );
        let done = b
            .resolve(&a.escalation_id, Some("called".into()), 9)
            .unwrap();
        assert_eq!(done.resolved_by, Some(ResolvedBy::Dispatcher));
        assert!(b.list(true).is_empty());
        assert!(b
            .clear(EscalationKind::RiderSilent, &Subject::Rider(r), 10)
            .is_none());
    }
}
