//! Every node's dashboard shows the escalations of every node (docs/cluster.md, "The
//! whole city on every socket"): each node tells the others of every change of its own
//! escalations, and what a node hears goes to its engine's list (`alerts_heard`: the
//! dashboards' snapshots and `GET /escalations`, and the node to forward a resolution to)
//! and to its dashboards' hub (read through `Engine::escalations_elsewhere`). Not through
//! the event bus: its other readers (the event log, webhooks) must not re-emit another
//! node's escalations.
//!
//! As the roster does for riders' views: changes are coalesced, latest per escalation,
//! and sent every [`FLUSH`] as one note (the same to every peer); a peer that joins gets
//! every open escalation of this node first. Escalations are few, so the notes are small.

use super::alerts_heard::{AlertsHeard, Put};
use super::coalesce::Coalesced;
use super::remote::wire::Call;
use super::remote::Peers;
use super::Shared;
use crate::domain::escalation::Escalation;
use crate::domain::EscalationId;
use crate::metric_names;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::broadcast;

/// How often coalesced changes go out.
pub const FLUSH: Duration = Duration::from_millis(500);

/// How many escalations one note carries at most: a mesh entry stays small.
pub const ESCALATIONS_PER_NOTE: usize = 500;

/// How many open escalations of this node are remembered for new peers, and how many
/// changes wait for a flush. A city has far fewer open at once; the cap bounds a fault.
pub const OPEN_CAP: usize = 10_000;

/// How many notes heard wait for the hub (one per peer per [`FLUSH`]). A hub further
/// behind loses the oldest (it counts them).
pub const HEARD_CAPACITY: usize = 1024;

/// Escalations of another node, as it last told of them (for the hub).
#[derive(Debug, Clone)]
pub struct EscalationsHeard {
    pub node: Arc<str>,
    pub escalations: Vec<Arc<Escalation>>,
}

pub struct Alerts {
    /// Set once the node joined others: a node of its own keeps nothing for peers.
    on: AtomicBool,
    inner: Mutex<Inner>,
}

struct Inner {
    /// This node's open escalations (sent whole to a new peer).
    open: HashMap<EscalationId, Arc<Escalation>>,
    /// Changes not sent yet, latest per escalation.
    pending: Coalesced<EscalationId, Arc<Escalation>>,
    /// Peers that joined since the last flush: they get every open escalation.
    joined: Vec<Arc<str>>,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            on: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                open: HashMap::new(),
                pending: Coalesced::new(OPEN_CAP),
                joined: Vec::new(),
            }),
        }
    }
}

/// One flush: what peers that joined get, and what the others get.
type Flush = super::peer_notes::Flush<Arc<Escalation>>;

pub(crate) fn dropped(what: &'static str, n: u64) {
    metrics::counter!(metric_names::PEER_CHANGES_DROPPED_TOTAL, "what" => what).increment(n);
}

impl Alerts {
    /// From now on changes are kept for peers (this node joined others). Escalations
    /// read back from the store at start are not sent: every node of a cluster reads
    /// them into its own desk as it starts.
    pub fn turn_on(&self) {
        self.on.store(true, Ordering::Relaxed);
    }

    /// One of this node's escalations changed (raised, levelled up, resolved).
    pub fn put(&self, e: Arc<Escalation>) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        let mut inner = self.inner.lock();
        let id = e.escalation_id.clone();
        if !e.is_open() {
            inner.open.remove(&id);
        } else if inner.open.len() < OPEN_CAP || inner.open.contains_key(&id) {
            inner.open.insert(id.clone(), e.clone());
        } else {
            dropped("escalations", 1);
        }
        if !inner.pending.put(id, e) {
            dropped("escalations", 1);
        }
    }

    /// Peers new to membership: they get every open escalation at the next flush.
    pub fn joined(&self, nodes: &[Arc<str>]) {
        self.inner.lock().joined.extend_from_slice(nodes);
    }

    /// How many open escalations this node keeps for new peers.
    pub fn open(&self) -> usize {
        self.inner.lock().open.len()
    }

    fn take(&self) -> Flush {
        let mut inner = self.inner.lock();
        let joined = std::mem::take(&mut inner.joined);
        let mut whole: Vec<_> = if joined.is_empty() {
            Vec::new()
        } else {
            inner.open.values().cloned().collect()
        };
        // Oldest first, as they opened: a new peer's list reads like the desk's.
        whole.sort_by_key(|e| e.opened_ms);
        Flush {
            joined,
            whole,
            changed: inner.pending.take(),
        }
    }
}

/// The notes for each of `peers` with something to hear, each encoded once and at most
/// [`ESCALATIONS_PER_NOTE`] escalations long.
fn notes_for(flush: Flush, peers: &[Arc<str>]) -> Vec<(Arc<str>, Arc<str>)> {
    flush.notes(peers, ESCALATIONS_PER_NOTE, |escalations| {
        Call::Escalations { escalations }
    })
}

/// Sends this node's escalation changes to its peers every [`FLUSH`] until the engine
/// stops.
pub fn spawn_flusher(shared: Weak<Shared>, peers: Arc<dyn Peers>) {
    super::peer_notes::spawn_flusher(shared, peers, FLUSH, |s| {
        notes_for(s.alerts.take(), &s.fleet.peers())
    });
}

/// Another node's escalations: into this node's list (snapshots, REST, where to forward
/// a resolution), and to its hub. A copy older than the one held is neither.
pub fn heard(shared: &Shared, from: &str, escalations: Vec<Arc<Escalation>>) {
    let node: Arc<str> = from.into();
    let fresh: Vec<_> = {
        let mut book = shared.alerts_heard.lock();
        prune(shared, &mut book);
        escalations
            .into_iter()
            .filter(|e| match book.put(e.clone(), node.clone()) {
                Put::Kept => true,
                Put::Stale => false,
                // Not listed, but dashboards open still hear of it.
                Put::Full => {
                    dropped("escalations_heard", 1);
                    true
                }
            })
            .collect()
    };
    if fresh.is_empty() {
        return;
    }
    // Nobody listening (no hub): nothing to keep.
    let _ = shared.escalations_elsewhere.send(EscalationsHeard {
        node,
        escalations: fresh,
    });
}

/// Resolved escalations of other nodes leave after `retention.final_s`, as they leave
/// a desk.
pub(crate) fn prune(shared: &Shared, book: &mut AlertsHeard) {
    let retention_ms = (shared.cfg.retention.final_s.max(0.0) * 1000.0) as u64;
    book.prune_resolved(shared.now_ms().saturating_sub(retention_ms));
}

/// The channel heard escalations go out on.
pub fn channel() -> broadcast::Sender<EscalationsHeard> {
    broadcast::channel(HEARD_CAPACITY).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::escalation::EscalationKind;
    use crate::domain::OrderId;

    pub(crate) fn escalation(id: &str, level: u32, resolved_ms: Option<u64>) -> Arc<Escalation> {
        Arc::new(Escalation {
            escalation_id: EscalationId::parse(id).unwrap(),
            kind: EscalationKind::MerchantUnresponsive,
            level,
            order_id: Some(OrderId::parse("o_1").unwrap()),
            rider_id: None,
            opened_ms: level as u64,
            resolved_ms,
            resolved_by: None,
            message: "m".into(),
            note: None,
        })
    }

    fn node(s: &str) -> Arc<str> {
        s.into()
    }

    fn decoded(note: &str) -> Vec<Arc<Escalation>> {
        match serde_json::from_str::<Call>(note).unwrap() {
            Call::Escalations { escalations } => escalations,
            other => panic!("not escalations: {other:?}"),
        }
    }

    #[test]
    fn changes_are_coalesced_and_a_new_peer_gets_every_open_escalation() {
        let alerts = Alerts::default();
        alerts.turn_on();
        alerts.put(escalation("e_1", 1, None));
        alerts.put(escalation("e_1", 2, None));
        alerts.put(escalation("e_2", 1, None));
        let notes = notes_for(alerts.take(), &[node("b")]);
        assert_eq!(notes.len(), 1);
        assert_eq!(
            decoded(&notes[0].1),
            vec![escalation("e_1", 2, None), escalation("e_2", 1, None)]
        );
        assert!(notes_for(alerts.take(), &[node("b")]).is_empty());

        // e_2 is resolved: b hears it; c, new, gets the open ones only.
        alerts.put(escalation("e_2", 1, Some(9)));
        alerts.joined(&[node("c")]);
        let notes = notes_for(alerts.take(), &[node("b"), node("c")]);
        assert_eq!(decoded(&notes[0].1), vec![escalation("e_2", 1, Some(9))]);
        assert_eq!(notes[1].0, node("c"));
        assert_eq!(decoded(&notes[1].1), vec![escalation("e_1", 2, None)]);
        assert_eq!(alerts.open(), 1);
    }

    #[test]
    fn a_node_of_its_own_keeps_nothing_for_peers() {
        let alerts = Alerts::default();
        alerts.put(escalation("e_1", 1, None));
        assert_eq!(alerts.open(), 0);
        alerts.joined(&[node("b")]);
        assert!(notes_for(alerts.take(), &[node("b")]).is_empty());
    }

    #[test]
    fn a_big_flush_goes_in_several_notes() {
        let alerts = Alerts::default();
        alerts.turn_on();
        for i in 0..ESCALATIONS_PER_NOTE + 1 {
            alerts.put(escalation(&format!("e_{i}"), 1, None));
        }
        let notes = notes_for(alerts.take(), &[node("b")]);
        assert_eq!(notes.len(), 2);
        assert_eq!(decoded(&notes[1].1).len(), 1);
    }
}
