//! The whole fleet in every node's matcher (docs/cluster.md, "Any socket on any node"):
//! each node tells the others what its matcher holds of its own riders (the same
//! `Change`s its riders put in its own feed), so an order's search sees riders living on
//! any node, and its offer reaches them through a remote reference.
//!
//! Changes are coalesced, latest per rider, and sent every `FLUSH` as one note per peer:
//! a rider sending a fix every few seconds costs its peers one entry per flush at most. A
//! peer that joins gets this node's whole fleet first; a peer that leaves takes its riders
//! out of this node's matcher.

use super::coalesce::Coalesced;
use super::matcher::DrainFeed;
use super::remote::wire::Call;
use super::remote::Peers;
use super::Shared;
use crate::domain::RiderId;
use crate::matcher::feed::Change;
use crate::matcher::Placement;
use crate::metric_names;
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often coalesced changes go out.
pub const FLUSH: Duration = Duration::from_millis(200);

#[derive(Default)]
pub struct Fleet {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// What the matcher holds of each local rider now (sent whole to a new peer).
    local: HashMap<RiderId, Placement>,
    /// Changes not sent yet, latest per rider, in the order riders first changed.
    pending: Coalesced<RiderId, Change>,
    /// The nodes told so far.
    peers: BTreeSet<Arc<str>>,
    /// Peers that joined since the last flush: they get the whole fleet.
    joined: Vec<Arc<str>>,
    /// Membership has been read at least once (before that, no node is known gone).
    membership_read: bool,
}

impl Fleet {
    /// A local rider's change (as put in this node's own matcher feed).
    pub fn put(&self, change: &Change) {
        let mut inner = self.inner.lock();
        match change {
            Change::Place(p) => inner.local.insert(p.rider_id.clone(), p.clone()),
            Change::Remove(id) => inner.local.remove(id),
        };
        if inner.peers.is_empty() {
            return;
        }
        if !inner.pending.put(change.rider_id().clone(), change.clone()) {
            metrics::counter!(metric_names::PEER_CHANGES_DROPPED_TOTAL, "what" => "fleet")
                .increment(1);
        }
    }

    /// The live nodes other than this one. Returns the nodes that left since the last
    /// call (their riders are to be taken out of this node's matcher).
    pub fn set_peers(&self, nodes: impl IntoIterator<Item = Arc<str>>) -> Vec<Arc<str>> {
        let now: BTreeSet<Arc<str>> = nodes.into_iter().collect();
        let mut inner = self.inner.lock();
        let left = inner.peers.difference(&now).cloned().collect();
        let joined: Vec<_> = now.difference(&inner.peers).cloned().collect();
        inner.joined.extend(joined);
        inner.peers = now;
        inner.membership_read = true;
        left
    }

    /// Is `node` known to be gone (membership read, and it is not among the live)? A
    /// call to it would only wait out its timeout.
    pub fn is_gone(&self, node: &str) -> bool {
        let inner = self.inner.lock();
        inner.membership_read && !inner.peers.contains(node)
    }

    /// The nodes this one tells of its changes.
    pub fn peers(&self) -> Vec<Arc<str>> {
        self.inner.lock().peers.iter().cloned().collect()
    }

    /// What to send now: (peer, changes) for each peer with something to hear.
    fn take(&self) -> Vec<(Arc<str>, Vec<Change>)> {
        let mut inner = self.inner.lock();
        let pending = inner.pending.take();
        let joined = std::mem::take(&mut inner.joined);
        let whole: Vec<Change> = if joined.is_empty() {
            Vec::new()
        } else {
            inner.local.values().cloned().map(Change::Place).collect()
        };
        inner
            .peers
            .iter()
            .filter_map(|p| {
                let changes = if joined.contains(p) {
                    whole.clone()
                } else {
                    pending.clone()
                };
                (!changes.is_empty()).then(|| (p.clone(), changes))
            })
            .collect()
    }
}

/// Sends this node's fleet changes to its peers every [`FLUSH`] until the engine stops.
pub fn spawn_flusher(shared: Weak<Shared>, peers: Arc<dyn Peers>) {
    super::peer_notes::spawn_flusher(shared, peers, FLUSH, |s| {
        s.fleet
            .take()
            .into_iter()
            .map(|(peer, changes)| (peer, Call::Fleet { changes }.encode().into()))
            .collect()
    });
}

/// Another node's riders changed: this node's matcher follows, and remembers where each
/// lives. A rider whose actor is on this node is this node's own business.
pub fn heard(shared: &Arc<Shared>, from: &str, changes: Vec<Change>) {
    let node: Arc<str> = from.into();
    let mut any = false;
    let mut disputed = Vec::new();
    for change in changes {
        let id = change.rider_id().clone();
        if let Some(addr) = shared.dir.rider(&id) {
            if matches!(change, Change::Place(_)) {
                // Another node runs this rider too: it took the rider while this node
                // could not answer (frozen, cut off). The store says which one is the
                // rider's now; a stale actor here stands down.
                stand_down_if_moved(shared, addr, node.clone(), change);
            }
            continue;
        }
        let verdict = judge(&mut shared.dir.remote_riders.write(), &node, &change);
        match verdict {
            Verdict::Apply => {}
            Verdict::Ignore => continue,
            Verdict::Disputed => {
                disputed.push(change);
                continue;
            }
        }
        any |= shared.matcher_feed.put(change);
    }
    if any {
        shared.matcher.do_send(DrainFeed);
    }
    if !disputed.is_empty() {
        settle_disputes(shared, node, disputed);
    }
}

/// What to make of a peer's change of one of its riders (not one of this node's).
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Apply it to the matcher (`remote` already follows it).
    Apply,
    /// Drop it.
    Ignore,
    /// Another node was known to run the rider: the store decides.
    Disputed,
}

/// Keeps `remote` (rider → the node running it) in line with a change `node` sent.
fn judge(remote: &mut HashMap<RiderId, Arc<str>>, node: &Arc<str>, change: &Change) -> Verdict {
    let id = change.rider_id();
    match change {
        Change::Place(_) => match remote.get(id) {
            // Two nodes say they run the rider: one took it while the other could not
            // answer, and the other, back, has not heard yet. Believing the last to speak
            // would let the stale one's stand-down (a `Remove`) take the rider out of this
            // matcher for good.
            Some(known) if known != node => Verdict::Disputed,
            _ => {
                remote.insert(id.clone(), node.clone());
                Verdict::Apply
            }
        },
        // Only its own node may take it out (it may have moved on already).
        Change::Remove(_) if remote.get(id) == Some(node) => {
            remote.remove(id);
            Verdict::Apply
        }
        Change::Remove(_) => Verdict::Ignore,
    }
}

/// Applies the placements of riders `node` claims that another node was known to run,
/// for those the store names `node` as the rider's node (a rider's new node names itself
/// there before it announces the rider). The others are stale claims, dropped.
fn settle_disputes(shared: &Arc<Shared>, node: Arc<str>, changes: Vec<Change>) {
    let store = shared.store.clone();
    let shared = shared.clone();
    shared.home.clone().spawn(async move {
        let mut any = false;
        for change in changes {
            let id = change.rider_id().clone();
            let named = matches!(store.rider_node(&id).await, Ok(Some(n)) if *n == *node);
            if !named {
                metrics::counter!(metric_names::FLEET_STALE_CLAIMS_TOTAL).increment(1);
                continue;
            }
            if shared.dir.rider(&id).is_some() {
                continue;
            }
            shared.dir.remote_riders.write().insert(id, node.clone());
            any |= shared.matcher_feed.put(change);
        }
        if any {
            shared.matcher.do_send(DrainFeed);
        }
    });
}

/// Stops this node's actor of `id` if the store names `to` as the rider's node.
/// Then the peer's change is applied as for any rider of another node.
fn stand_down_if_moved(
    shared: &Arc<Shared>,
    addr: actix::Addr<super::rider::RiderActor>,
    to: Arc<str>,
    change: Change,
) {
    let id = change.rider_id().clone();
    let store = shared.store.clone();
    let shared = shared.clone();
    shared.home.clone().spawn(async move {
        if !matches!(store.rider_node(&id).await, Ok(Some(node)) if *node == *to) {
            return;
        }
        tracing::warn!(rider = %id, node = %to, "rider moved to another node: standing down");
        // Its state went to the other node from the store; this copy only stops.
        let _ = addr.send(crate::protocol::HandOver).await;
        heard(&shared, &to, vec![change]);
    });
}

/// A peer left (died, or was cut off): its riders leave this node's matcher until their
/// actors come back somewhere and say so.
pub fn forget_node(shared: &Shared, node: &str) {
    let gone: Vec<RiderId> = {
        let mut remote = shared.dir.remote_riders.write();
        let ids: Vec<RiderId> = remote
            .iter()
            .filter(|(_, n)| &***n == node)
            .map(|(id, _)| id.clone())
            .collect();
        // A rider whose actor came here meanwhile (its socket reconnected here) stays:
        // its own entry is in the matcher now.
        let ids: Vec<RiderId> = ids
            .into_iter()
            .filter(|id| {
                let local = shared.dir.rider(id).is_some();
                if local {
                    remote.remove(id);
                }
                !local
            })
            .collect();
        for id in &ids {
            remote.remove(id);
        }
        ids
    };
    let mut any = false;
    for id in gone {
        any |= shared.matcher_feed.put(Change::Remove(id));
    }
    if any {
        shared.matcher.do_send(DrainFeed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::GeoPoint;

    fn place(i: usize, north_m: f64) -> Change {
        Change::Place(Placement {
            rider_id: RiderId::parse(&format!("r_{i}")).unwrap(),
            point: GeoPoint::new(31.23, 121.47)
                .unwrap()
                .destination(0.0, north_m),
            available: true,
            busy_until: None,
            shift_end_ms: None,
        })
    }

    fn node(s: &str) -> Arc<str> {
        s.into()
    }

    #[test]
    fn a_claim_on_a_rider_another_node_runs_is_disputed_and_its_remove_ignored() {
        let mut remote = HashMap::new();
        let rid = RiderId::parse("r_1").unwrap();
        let (a, b) = (node("a"), node("b"));
        // A runs the rider (its socket reconnected there while B was cut off).
        assert_eq!(judge(&mut remote, &a, &place(1, 0.0)), Verdict::Apply);
        // B, back, still runs a stale copy and says so: the store decides, nothing moves.
        assert_eq!(judge(&mut remote, &b, &place(1, 5.0)), Verdict::Disputed);
        assert_eq!(remote.get(&rid), Some(&a));
        // B's copy stands down: its Remove must not take A's rider out.
        let gone = Change::Remove(rid.clone());
        assert_eq!(judge(&mut remote, &b, &gone), Verdict::Ignore);
        assert_eq!(remote.get(&rid), Some(&a));
        // A's own changes go on; A's Remove does take it out.
        assert_eq!(judge(&mut remote, &a, &place(1, 9.0)), Verdict::Apply);
        assert_eq!(judge(&mut remote, &a, &gone), Verdict::Apply);
        assert!(remote.is_empty());
        // Once nobody runs it, anyone may claim it.
        assert_eq!(judge(&mut remote, &b, &place(1, 0.0)), Verdict::Apply);
        assert_eq!(remote.get(&rid), Some(&b));
    }

    #[test]
    fn changes_are_coalesced_per_rider_and_new_peers_get_the_whole_fleet() {
        let fleet = Fleet::default();
        // No peers: nothing is queued, but the fleet is remembered.
        fleet.put(&place(1, 0.0));
        assert!(fleet.take().is_empty());
        assert!(
            !fleet.is_gone("b"),
            "nobody is known gone before membership is read"
        );
        assert!(fleet.set_peers([node("b")]).is_empty());
        assert!(!fleet.is_gone("b"));
        assert!(fleet.is_gone("z"));
        // b joined: it hears the whole fleet, however old.
        assert_eq!(fleet.take(), vec![(node("b"), vec![place(1, 0.0)])]);
        // Later changes: the latest per rider, in first-change order.
        fleet.put(&place(2, 10.0));
        fleet.put(&place(1, 20.0));
        fleet.put(&place(2, 30.0));
        assert_eq!(
            fleet.take(),
            vec![(node("b"), vec![place(2, 30.0), place(1, 20.0)])]
        );
        // c joins while b hears only what changed.
        fleet.set_peers([node("b"), node("c")]);
        let rid = RiderId::parse("r_2").unwrap();
        fleet.put(&Change::Remove(rid.clone()));
        let sent = fleet.take();
        assert_eq!(sent[0], (node("b"), vec![Change::Remove(rid)]));
        assert_eq!(sent[1], (node("c"), vec![place(1, 20.0)]));
        // b leaves.
        assert_eq!(fleet.set_peers([node("c")]), vec![node("b")]);
    }
}
