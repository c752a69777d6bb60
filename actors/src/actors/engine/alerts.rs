//! Escalations another node's desk holds (docs/cluster.md, "The whole city on every
//! socket"): a dispatcher resolving one through this node is forwarded to that node.

use super::Engine;
use crate::actors::remote::wire::{Answer, Call};
use crate::domain::escalation::Escalation;
use crate::domain::EscalationId;
use crate::error::EngineError;
use std::sync::Arc;

impl Engine {
    /// Resolves `id` on the node whose desk holds it, as last heard. None: no node is
    /// known for it (the caller answers as its own desk did: not found).
    pub(super) async fn resolve_elsewhere(
        &self,
        id: EscalationId,
        note: Option<String>,
    ) -> Option<Result<Escalation, EngineError>> {
        let peers = self.shared.peers.get()?.clone();
        let node = self.shared.alerts_heard.lock().node_of(&id)?;
        let body = Call::ResolveEscalation {
            escalation_id: id.clone(),
            note,
        }
        .encode();
        let answer = match peers.call(&node, body).await {
            Ok(answer) => Answer::decode(&answer),
            Err(e) => Answer::failed(e),
        };
        Some(match answer {
            Answer::Escalation { result } => {
                if let Ok(e) = &result {
                    // This node's lists and dashboards see it resolved now, not at the
                    // other node's next flush.
                    crate::actors::alerts::heard(&self.shared, &node, vec![Arc::new(e.clone())]);
                }
                result
            }
            // The node did not answer (it may be gone; membership takes its escalations
            // out once it notices): nothing was changed.
            Answer::Failed { reason } => Err(EngineError::Unavailable(format!(
                "the node holding escalation {id} did not answer ({reason}); retry"
            ))),
            other => Err(EngineError::Unavailable(format!(
                "unexpected answer: {other:?}"
            ))),
        })
    }
}

#[cfg(test)]
impl Engine {
    /// The escalation desk (tests raise escalations on it directly).
    pub(crate) fn desk(&self) -> &actix::Addr<crate::actors::desk::EscalationDesk> {
        &self.shared.desk
    }
}
