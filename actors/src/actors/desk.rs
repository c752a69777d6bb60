//! The escalation desk: one actor over the [`EscalationBook`], so that "repeat raises the
//! level" holds across every order and rider actor that reports to it.

use super::Shared;
use crate::domain::escalation::{Escalation, EscalationBook, EscalationKind, Subject};
use crate::domain::{EscalationId, OrderId, RiderId};
use crate::error::EngineError;
use crate::events::Event;
use crate::metric_names;
use actix::prelude::*;
use std::sync::{Arc, Weak};

pub struct EscalationDesk {
    book: EscalationBook,
    shared: Weak<Shared>,
}

impl EscalationDesk {
    pub fn new() -> Self {
        Self {
            book: EscalationBook::default(),
            shared: Weak::new(),
        }
    }

    fn shared(&self) -> Option<Arc<Shared>> {
        self.shared.upgrade()
    }

    fn announce(&self, e: &Escalation, ctx: &mut Context<Self>) {
        if let Some(sh) = self.shared() {
            sh.bus.publish(Event::EscalationChanged {
                escalation: Arc::new(e.clone()),
            });
            let store = sh.store.clone();
            let e = e.clone();
            ctx.spawn(
                async move {
                    if let Err(err) = store.save_escalation(&e).await {
                        tracing::warn!(%err, "escalation not saved");
                    }
                }
                .into_actor(self),
            );
        }
    }
}

impl Default for EscalationDesk {
    fn default() -> Self {
        Self::new()
    }
}

impl Actor for EscalationDesk {
    type Context = Context<Self>;
}

/// Late wiring: the desk is created before the shared context that points to it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wire(pub Weak<Shared>);

impl Handler<Wire> for EscalationDesk {
    type Result = ();
    fn handle(&mut self, m: Wire, _: &mut Context<Self>) {
        self.shared = m.0;
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Raise {
    pub kind: EscalationKind,
    pub order_id: Option<OrderId>,
    pub rider_id: Option<RiderId>,
    pub message: String,
}

/// The cause cleared.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Clear {
    pub kinds: Vec<EscalationKind>,
    pub subject: Subject,
}

#[derive(Message)]
#[rtype(result = "Result<Escalation, EngineError>")]
pub struct Resolve {
    pub id: EscalationId,
    pub note: Option<String>,
}

/// Recovery: the book as stored (oldest first).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct RestoreBook(pub Vec<Escalation>);

impl Handler<RestoreBook> for EscalationDesk {
    type Result = usize;
    fn handle(&mut self, m: RestoreBook, _: &mut Context<Self>) -> usize {
        let mut open = 0;
        for e in m.0 {
            if self.book.get(&e.escalation_id).is_some() {
                continue;
            }
            open += usize::from(e.is_open());
            self.book.restore(e);
        }
        open
    }
}

#[derive(Message)]
#[rtype(result = "Vec<Escalation>")]
pub struct ListEscalations {
    pub open_only: bool,
}

impl Handler<Raise> for EscalationDesk {
    type Result = ();
    fn handle(&mut self, m: Raise, ctx: &mut Context<Self>) {
        let now = self.shared().map(|s| s.now_ms()).unwrap_or(0);
        let e = self
            .book
            .raise(m.kind, m.order_id, m.rider_id, m.message, now);
        metrics::counter!(metric_names::ESCALATIONS_TOTAL, "kind" => m.kind.as_str()).increment(1);
        tracing::info!(id = %e.escalation_id, kind = m.kind.as_str(), level = e.level, "escalation");
        self.announce(&e, ctx);
    }
}

impl Handler<Clear> for EscalationDesk {
    type Result = ();
    fn handle(&mut self, m: Clear, ctx: &mut Context<Self>) {
        let now = self.shared().map(|s| s.now_ms()).unwrap_or(0);
        for kind in m.kinds {
            if let Some(e) = self.book.clear(kind, &m.subject, now) {
                self.announce(&e, ctx);
            }
        }
    }
}

impl Handler<Resolve> for EscalationDesk {
    type Result = ResponseFuture<Result<Escalation, EngineError>>;
    fn handle(&mut self, m: Resolve, _: &mut Context<Self>) -> Self::Result {
        let Some(sh) = self.shared() else {
            return Box::pin(async { Err(EngineError::Unavailable("engine stopping".into())) });
        };
        if !sh.store.writable() {
            return Box::pin(async {
                Err(EngineError::Unavailable(
                    "the store is unavailable; nothing was changed".into(),
                ))
            });
        }
        let was_open = self.book.get(&m.id).map(|e| e.is_open());
        let Some(e) = self.book.resolve(&m.id, m.note, sh.now_ms()) else {
            let id = m.id.to_string();
            return Box::pin(async move { Err(EngineError::NotFound(format!("escalation {id}"))) });
        };
        if was_open == Some(true) {
            sh.bus.publish(Event::EscalationChanged {
                escalation: Arc::new(e.clone()),
            });
        }
        Box::pin(async move {
            sh.store
                .save_escalation(&e)
                .await
                .map_err(|err| EngineError::Unavailable(err.to_string()))?;
            Ok(e)
        })
    }
}

impl Handler<ListEscalations> for EscalationDesk {
    type Result = MessageResult<ListEscalations>;
    fn handle(&mut self, m: ListEscalations, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.book.list(m.open_only))
    }
}
