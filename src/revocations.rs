//! Revocations made on any node reach this one: a task polls the store's revocation
//! stream and, for each holder revoked, forgets the tokens this node holds of it and ends
//! its open sockets here (docs/cluster.md, "Tokens"). The node that revoked gets its own
//! announcement back too; ending nothing twice is harmless.

use crate::auth::Principal;
use crate::state::AppState;
use actix_web::web;
use std::time::Duration;

/// How often the stream is polled: the longest a revoked token may still open a socket
/// on another node, or a socket stay open there.
pub const POLL: Duration = Duration::from_millis(250);

pub async fn follow(state: web::Data<AppState>) {
    let store = state.engine.store().clone();
    let mut after = String::new();
    loop {
        match store.revocations_after(&after).await {
            Ok((next, holders)) => {
                for holder in holders {
                    if let Some(who) = Principal::decode(&holder) {
                        state.auth.forget_holder(&who);
                        state.sockets.end_all(&who, "token revoked");
                    }
                }
                after = next;
            }
            Err(e) => tracing::debug!(error = %e, "revocations: store not answering"),
        }
        tokio::time::sleep(POLL).await;
    }
}
