//! Every node's dashboard shows the riders of every node (docs/cluster.md, "The whole
//! city on every socket"): each node tells the others how its riders look on a dashboard
//! (the `RiderView` its riders publish), and hands what it hears to its dashboards'
//! hub ([`RidersElsewhere`], read through `Engine::riders_elsewhere`). The engine's event
//! bus is not used for these: its other readers (the event log, webhooks) must not
//! re-emit another node's riders.
//!
//! As the fleet (`super::fleet`) does for matcher placements: views are coalesced,
//! latest per rider, and sent every [`FLUSH`] as one note (the same to every peer); a
//! peer that joins gets every view this node knows first; a peer that leaves takes its
//! riders out of the dashboards' snapshots. A dashboard is for people, so the period is
//! longer than the matcher's.

use super::coalesce::{Coalesced, PENDING_CAP};
use super::remote::wire::Call;
use super::remote::Peers;
use super::Shared;
use crate::domain::rider::RiderView;
use crate::domain::RiderId;
use crate::metric_names;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::broadcast;

/// How often coalesced views go out.
pub const FLUSH: Duration = Duration::from_millis(500);

/// How many views one note carries at most (a few hundred kilobytes): a mesh entry stays
/// small however many riders a node runs.
pub const VIEWS_PER_NOTE: usize = 2_000;

/// How many notes heard wait for the hub: one per peer per [`FLUSH`], so a few seconds of
/// a hundred peers. A hub further behind loses the oldest (it counts them).
pub const HEARD_CAPACITY: usize = 1024;

/// What the hub hears of other nodes' riders.
#[derive(Debug, Clone)]
pub enum RidersElsewhere {
    /// The latest views of riders whose actors live on `node`.
    Views {
        node: Arc<str>,
        views: Vec<Arc<RiderView>>,
    },
    /// `node` left (membership): its riders are nowhere until their actors come back
    /// somewhere and say so.
    Left { node: Arc<str> },
}

#[derive(Default)]
pub struct Roster {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The latest view of each rider whose actor is here (sent whole to a new peer).
    known: HashMap<RiderId, Arc<RiderView>>,
    /// Views not sent yet, latest per rider.
    pending: Coalesced<RiderId, Arc<RiderView>>,
    /// Peers that joined since the last flush: they get every known view.
    joined: Vec<Arc<str>>,
}

/// One flush: what peers that joined get, and what the others get.
type Flush = super::peer_notes::Flush<Arc<RiderView>>;

fn dropped() {
    metrics::counter!(metric_names::PEER_CHANGES_DROPPED_TOTAL, "what" => "rider_views")
        .increment(1);
}

impl Roster {
    /// A local rider's view changed (as published on this node's bus).
    pub fn put(&self, view: Arc<RiderView>) {
        let mut inner = self.inner.lock();
        let id = view.rider_id.clone();
        if inner.known.len() < PENDING_CAP || inner.known.contains_key(&id) {
            inner.known.insert(id.clone(), view.clone());
        } else {
            dropped();
        }
        if !inner.pending.put(id, view) {
            dropped();
        }
    }

    /// Views read from the actors when this node joined: kept unless a newer one was put
    /// meanwhile.
    pub fn seed(&self, views: impl IntoIterator<Item = RiderView>) {
        let mut inner = self.inner.lock();
        for view in views {
            if inner.known.len() >= PENDING_CAP {
                dropped();
                break;
            }
            inner
                .known
                .entry(view.rider_id.clone())
                .or_insert_with(|| Arc::new(view));
        }
    }

    /// The rider's actor stopped here (its socket opened on another node, which tells
    /// of it from now on).
    pub fn forget(&self, id: &RiderId) {
        self.inner.lock().known.remove(id);
    }

    /// Peers new to membership: they get every view at the next flush.
    pub fn joined(&self, nodes: &[Arc<str>]) {
        self.inner.lock().joined.extend_from_slice(nodes);
    }

    /// How many riders' views this node keeps for new peers.
    pub fn len(&self) -> usize {
        self.inner.lock().known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(&self) -> Flush {
        let mut inner = self.inner.lock();
        let joined = std::mem::take(&mut inner.joined);
        let whole = if joined.is_empty() {
            Vec::new()
        } else {
            inner.known.values().cloned().collect()
        };
        Flush {
            joined,
            whole,
            changed: inner.pending.take(),
        }
    }
}

/// The notes for each of `peers` with something to hear, each note encoded once and at
/// most [`VIEWS_PER_NOTE`] views long (a new peer of a big node gets several).
fn notes_for(flush: Flush, peers: &[Arc<str>]) -> Vec<(Arc<str>, Arc<str>)> {
    flush.notes(peers, VIEWS_PER_NOTE, |views| Call::Riders { views })
}

/// Sends this node's riders' views to its peers every [`FLUSH`] until the engine stops.
pub fn spawn_flusher(shared: Weak<Shared>, peers: Arc<dyn Peers>) {
    super::peer_notes::spawn_flusher(shared, peers, FLUSH, |s| {
        notes_for(s.roster.take(), &s.fleet.peers())
    });
}

/// Another node's riders' views: to this node's hub. A rider whose actor is here is this
/// node's own business (its own view is the one to show).
pub fn heard(shared: &Shared, from: &str, mut views: Vec<Arc<RiderView>>) {
    views.retain(|v| shared.dir.rider(&v.rider_id).is_none());
    if views.is_empty() {
        return;
    }
    // Nobody listening (no hub): nothing to keep.
    let _ = shared.riders_elsewhere.send(RidersElsewhere::Views {
        node: from.into(),
        views,
    });
}

/// The channel heard views go out on.
pub fn channel() -> broadcast::Sender<RidersElsewhere> {
    broadcast::channel(HEARD_CAPACITY).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rider::RiderStatus;

    fn view(i: usize, status: RiderStatus) -> Arc<RiderView> {
        Arc::new(RiderView {
            rider_id: RiderId::parse(&format!("r_{i}")).unwrap(),
            name: format!("Rider {i}"),
            location: None,
            status,
            order_ids: Vec::new(),
            last_seen_ms: Some(i as u64),
            offer: None,
        })
    }

    fn node(s: &str) -> Arc<str> {
        s.into()
    }

    fn decoded(note: &str) -> Vec<Arc<RiderView>> {
        match serde_json::from_str::<Call>(note).unwrap() {
            Call::Riders { views } => views,
            other => panic!("not riders: {other:?}"),
        }
    }

    #[test]
    fn views_are_coalesced_per_rider_and_new_peers_get_every_view() {
        let roster = Roster::default();
        roster.put(view(1, RiderStatus::Offline));
        roster.put(view(1, RiderStatus::Idle));
        roster.put(view(2, RiderStatus::Idle));
        roster.put(view(1, RiderStatus::Busy));
        let peers = [node("b")];
        let notes = notes_for(roster.take(), &peers);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].0, node("b"));
        // The latest per rider, in first-change order.
        assert_eq!(
            decoded(&notes[0].1),
            vec![view(1, RiderStatus::Busy), view(2, RiderStatus::Idle)]
        );
        // Nothing changed: nobody is told anything.
        assert!(notes_for(roster.take(), &peers).is_empty());

        // c joins: it hears every view; b only what changed.
        roster.joined(&[node("c")]);
        roster.put(view(2, RiderStatus::Offline));
        let peers = [node("b"), node("c")];
        let notes = notes_for(roster.take(), &peers);
        assert_eq!(decoded(&notes[0].1), vec![view(2, RiderStatus::Offline)]);
        let mut whole = decoded(&notes[1].1);
        whole.sort_by(|a, b| a.rider_id.cmp(&b.rider_id));
        assert_eq!(
            whole,
            vec![view(1, RiderStatus::Busy), view(2, RiderStatus::Offline)]
        );
        // A joined peer not (or no longer) among the peers is told nothing.
        roster.joined(&[node("z")]);
        assert!(notes_for(roster.take(), &peers).is_empty());
    }

    #[test]
    fn a_big_flush_goes_in_several_notes() {
        let roster = Roster::default();
        for i in 0..VIEWS_PER_NOTE + 1 {
            roster.put(view(i, RiderStatus::Idle));
        }
        let notes = notes_for(roster.take(), &[node("b")]);
        assert_eq!(notes.len(), 2);
        assert_eq!(decoded(&notes[0].1).len(), VIEWS_PER_NOTE);
        assert_eq!(
            decoded(&notes[1].1),
            vec![view(VIEWS_PER_NOTE, RiderStatus::Idle)]
        );
    }

    #[test]
    fn a_rider_gone_from_here_is_not_sent_to_new_peers_and_seeds_never_replace_a_newer_view() {
        let roster = Roster::default();
        roster.put(view(1, RiderStatus::Busy));
        roster.seed([
            (*view(1, RiderStatus::Offline)).clone(),
            (*view(2, RiderStatus::Idle)).clone(),
        ]);
        assert_eq!(roster.len(), 2);
        roster.forget(&RiderId::parse("r_2").unwrap());
        roster.take();
        roster.joined(&[node("b")]);
        let notes = notes_for(roster.take(), &[node("b")]);
        assert_eq!(decoded(&notes[0].1), vec![view(1, RiderStatus::Busy)]);
    }
}
