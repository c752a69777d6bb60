//! What a node sends its peers every few hundred milliseconds (docs/cluster.md): one loop
//! per kind of note (the fleet's changes, riders' views, escalations, order notices), and,
//! for the kinds a peer that just joined needs whole (riders' views, open escalations),
//! one way to make the notes of a flush.

use super::remote::wire::Call;
use super::remote::Peers;
use super::Shared;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Notes to send: each with the peer it goes to.
pub(crate) type Notes = Vec<(Arc<str>, Arc<str>)>;

/// What one flush of a kind sends: everything (`whole`) to the peers that joined since the
/// last flush, the changes since then to the others.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Flush<T> {
    pub joined: Vec<Arc<str>>,
    pub whole: Vec<T>,
    pub changed: Vec<T>,
}

impl<T: Clone> Flush<T> {
    /// The notes for each of `peers` with something to hear, each note encoded once and at
    /// most `per_note` items long (a new peer of a big node gets several); `call` makes the
    /// note of one chunk.
    pub(crate) fn notes(
        self,
        peers: &[Arc<str>],
        per_note: usize,
        call: impl Fn(Vec<T>) -> Call,
    ) -> Notes {
        let encode = |items: Vec<T>| -> Vec<Arc<str>> {
            items
                .chunks(per_note.max(1))
                .map(|c| call(c.to_vec()).encode().into())
                .collect()
        };
        let whole = encode(self.whole);
        let changed = encode(self.changed);
        peers
            .iter()
            .flat_map(|p| {
                let notes = if self.joined.contains(p) {
                    &whole
                } else {
                    &changed
                };
                notes.iter().map(|n| (p.clone(), n.clone()))
            })
            .collect()
    }
}

/// Every `every` until the engine stops, the notes `notes` makes of what the node
/// collected go to their peers.
pub(crate) fn spawn_flusher(
    shared: Weak<Shared>,
    peers: Arc<dyn Peers>,
    every: Duration,
    notes: fn(&Shared) -> Notes,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            for (peer, note) in notes(&shared) {
                peers.note(&peer, note.to_string());
            }
        }
    });
}
