//! What the engine hears from other nodes (riders, escalations, order notices) reaches the
//! hub on bounded broadcast channels of its own, one reader task each; the reading is the
//! same for all three, so it is here once.

use dispatch_actors::metric_names;
use tokio::sync::broadcast::{error::RecvError, Receiver};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Hands each message of `rx` to `on` until `stop` turns true or the channel closes. A
/// reader that fell behind loses the oldest messages, counted in
/// `dispatch_peer_changes_dropped_total{what}`.
pub(super) fn follow<T: Clone + Send + 'static>(
    mut rx: Receiver<T>,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
    mut on: impl FnMut(T) + 'static,
) -> JoinHandle<()> {
    actix_web::rt::spawn(async move {
        loop {
            let heard = tokio::select! {
                heard = rx.recv() => heard,
                _ = stop.wait_for(|s| *s) => break,
            };
            match heard {
                Ok(m) => on(m),
                Err(RecvError::Lagged(n)) => {
                    metrics::counter!(metric_names::PEER_CHANGES_DROPPED_TOTAL, "what" => what)
                        .increment(n)
                }
                Err(RecvError::Closed) => break,
            }
        }
    })
}
