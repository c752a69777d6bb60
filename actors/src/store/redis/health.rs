//! Whether Redis answers, shared by the writer, the position flusher and the pinger: the
//! engine reads it (through [`Store::writable`](crate::store::Store::writable)) to refuse
//! new changes up front instead of changing memory it could not store.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Weak;
use std::time::Duration;

use super::conn::StoreConn;

pub(super) struct Status {
    pub(super) healthy: AtomicBool,
    /// Recovery finished; until then the engine must not take changes.
    pub(super) recovered: AtomicBool,
    /// Writes kept while Redis is away (the writer counts them; operators read them).
    pub(super) pending: AtomicU64,
}

impl Status {
    pub(super) fn new() -> Status {
        Status {
            healthy: AtomicBool::new(false),
            recovered: AtomicBool::new(false),
            pending: AtomicU64::new(0),
        }
    }

    /// Logs only the changes, so an outage is two log lines, not one per failed write.
    pub(super) fn set_healthy(&self, ok: bool) {
        let was = self.healthy.swap(ok, Ordering::SeqCst);
        if was != ok {
            if ok {
                tracing::info!("redis reachable");
            } else {
                tracing::warn!("redis unreachable: state changes answer 503 until it is back");
            }
        }
    }
}

/// PINGs Redis (every master of a cluster) a few times a second: `healthy` follows the
/// answers. Without it an idle
/// engine would only notice Redis came back at its next write, and refuse changes until
/// then. Holds the status weakly so it stops once nothing else holds it (store dropped).
pub(super) async fn pinger(mut conn: StoreConn, status: Weak<Status>) {
    loop {
        let ok = matches!(
            tokio::time::timeout(Duration::from_millis(500), conn.ping()).await,
            Ok(Ok(_))
        );
        let Some(st) = status.upgrade() else { return };
        st.set_healthy(ok);
        drop(st);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
