//! The escalations of other nodes, as this node lists them (docs/cluster.md, "The whole
//! city on every socket"): the latest copy of each, as its node sent it
//! (`super::alerts`), with that node, so that a dispatcher resolving one through this
//! node is forwarded to the desk that holds it.
//!
//! Bounded: past the cap a new escalation is not kept (the caller counts it); resolved
//! ones leave after the desk's retention, as they leave a desk; a node that leaves takes
//! its escalations out (its orders' new node raises its own if the cause lasts).

use crate::domain::escalation::Escalation;
use crate::domain::EscalationId;
use std::collections::HashMap;
use std::sync::Arc;

/// How many escalations of other nodes one node keeps: far above what a city has open.
pub const HEARD_CAP: usize = 20_000;

pub struct AlertsHeard {
    cap: usize,
    all: HashMap<EscalationId, (Arc<Escalation>, Arc<str>)>,
}

/// What became of a copy heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Kept,
    /// Older than the copy held (a resolution is final; a level only rises).
    Stale,
    /// A new escalation over the cap: not kept.
    Full,
}

impl Default for AlertsHeard {
    fn default() -> Self {
        AlertsHeard::new(HEARD_CAP)
    }
}

/// Is `new` a later copy of the escalation than `old`?
fn newer(new: &Escalation, old: &Escalation) -> bool {
    if !old.is_open() {
        return false;
    }
    !new.is_open() || new.level >= old.level
}

impl AlertsHeard {
    pub fn new(cap: usize) -> Self {
        AlertsHeard {
            cap: cap.max(1),
            all: HashMap::new(),
        }
    }

    /// Keeps the latest copy of an escalation whose desk is on `node`.
    pub fn put(&mut self, e: Arc<Escalation>, node: Arc<str>) -> Put {
        match self.all.get(&e.escalation_id) {
            Some((old, _)) if !newer(&e, old) => return Put::Stale,
            None if self.all.len() >= self.cap => return Put::Full,
            _ => {}
        }
        self.all.insert(e.escalation_id.clone(), (e, node));
        Put::Kept
    }

    /// The node whose desk holds `id`, if heard of.
    pub fn node_of(&self, id: &EscalationId) -> Option<Arc<str>> {
        self.all.get(id).map(|(_, n)| n.clone())
    }

    /// `node` left: its escalations go. Returns how many went.
    pub fn forget_node(&mut self, node: &str) -> usize {
        let before = self.all.len();
        self.all.retain(|_, (_, n)| &**n != node);
        before - self.all.len()
    }

    /// Forgets those resolved before `before_ms`; returns how many went.
    pub fn prune_resolved(&mut self, before_ms: u64) -> usize {
        let before = self.all.len();
        self.all
            .retain(|_, (e, _)| e.resolved_ms.is_none_or(|at| at >= before_ms));
        before - self.all.len()
    }

    /// Newest first, as a desk lists.
    pub fn list(&self, open_only: bool) -> Vec<Escalation> {
        let mut all: Vec<Escalation> = self
            .all
            .values()
            .filter(|(e, _)| !open_only || e.is_open())
            .map(|(e, _)| (**e).clone())
            .collect();
        all.sort_by_key(|e| std::cmp::Reverse(e.opened_ms));
        all
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }
}

/// A list of escalations: `here` (this node's desk), then those of other nodes not among
/// them, newest first.
pub fn with_heard(here: Vec<Escalation>, heard: Vec<Escalation>) -> Vec<Escalation> {
    let ids: std::collections::HashSet<EscalationId> =
        here.iter().map(|e| e.escalation_id.clone()).collect();
    let mut all = here;
    all.extend(
        heard
            .into_iter()
            .filter(|e| !ids.contains(&e.escalation_id)),
    );
    // Stable: the desk's own order stands among equal opening times.
    all.sort_by_key(|e| std::cmp::Reverse(e.opened_ms));
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::escalation::EscalationKind;
    use crate::domain::OrderId;

    fn esc(id: &str, level: u32, opened_ms: u64, resolved_ms: Option<u64>) -> Arc<Escalation> {
        Arc::new(Escalation {
            escalation_id: EscalationId::parse(id).unwrap(),
            kind: EscalationKind::NoRider,
            level,
            order_id: Some(OrderId::parse("o_1").unwrap()),
            rider_id: None,
            opened_ms,
            resolved_ms,
            resolved_by: None,
            message: "m".into(),
            note: None,
        })
    }

    #[test]
    fn the_latest_copy_is_kept_with_its_node_and_a_resolution_is_final() {
        let mut h = AlertsHeard::new(2);
        let a: Arc<str> = "a".into();
        assert_eq!(h.put(esc("e_1", 1, 1, None), a.clone()), Put::Kept);
        assert_eq!(h.put(esc("e_1", 2, 1, None), a.clone()), Put::Kept);
        assert_eq!(h.put(esc("e_1", 1, 1, None), a.clone()), Put::Stale);
        assert_eq!(h.put(esc("e_1", 2, 1, Some(5)), a.clone()), Put::Kept);
        assert_eq!(h.put(esc("e_1", 3, 1, None), a.clone()), Put::Stale);
        assert_eq!(h.node_of(&EscalationId::parse("e_1").unwrap()), Some(a));
        assert!(h.list(true).is_empty());
        assert_eq!(h.list(false)[0].resolved_ms, Some(5));
    }

    #[test]
    fn bounded_pruned_and_a_leaving_node_takes_its_escalations() {
        let mut h = AlertsHeard::new(2);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        h.put(esc("e_1", 1, 1, Some(10)), a.clone());
        h.put(esc("e_2", 1, 2, None), b.clone());
        assert_eq!(h.put(esc("e_3", 1, 3, None), b.clone()), Put::Full);
        assert_eq!(h.list(false).len(), 2);
        assert_eq!(h.prune_resolved(5), 0, "resolved at 10, kept past 5");
        assert_eq!(h.prune_resolved(11), 1);
        assert_eq!(h.put(esc("e_3", 1, 3, None), b.clone()), Put::Kept);
        assert_eq!(h.forget_node("b"), 2);
        assert!(h.is_empty());
        assert_eq!(h.node_of(&EscalationId::parse("e_2").unwrap()), None);
    }

    #[test]
    fn a_list_has_each_escalation_once_newest_first() {
        let here = vec![(*esc("e_2", 1, 5, None)).clone()];
        let heard = vec![
            (*esc("e_2", 1, 5, None)).clone(),
            (*esc("e_3", 1, 9, None)).clone(),
            (*esc("e_1", 1, 1, None)).clone(),
        ];
        let ids: Vec<_> = with_heard(here, heard)
            .into_iter()
            .map(|e| e.escalation_id.to_string())
            .collect();
        assert_eq!(ids, ["e_3", "e_2", "e_1"]);
    }
}
