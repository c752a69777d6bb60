//! The escalation desk: one actor over the [`EscalationBook`], so that "repeat raises the
//! level" holds across every order and rider actor that reports to it.

use super::alerts::Alerts;
use crate::clock::Clock;
use crate::config::secs;
use crate::domain::escalation::{Escalation, EscalationBook, EscalationKind, Subject};
use crate::domain::{EscalationId, OrderId, RiderId};
use crate::error::EngineError;
use crate::events::{Event, EventBus};
use crate::metric_names;
use crate::store::Store;
use actix::prelude::*;
use std::sync::Arc;

/// How often resolved escalations past their retention leave the book.
const PRUNE_EVERY_S: f64 = 60.0;

pub struct EscalationDesk {
    book: EscalationBook,
    bus: EventBus,
    store: Arc<dyn Store>,
    clock: Clock,
    /// Resolved escalations stay in the book (and in `GET /escalations`) this long; they
    /// stay in the store.
    retention_ms: u64,
    /// Several nodes: every change goes to the other nodes too (`super::alerts`).
    alerts: Option<Arc<Alerts>>,
}

impl EscalationDesk {
    pub fn new(bus: EventBus, store: Arc<dyn Store>, clock: Clock, retention_s: f64) -> Self {
        Self {
            book: EscalationBook::default(),
            bus,
            store,
            clock,
            retention_ms: (retention_s.max(0.0) * 1000.0) as u64,
            alerts: None,
        }
    }

    /// Tells `alerts` of every change (they go to the other nodes once this one joined
    /// them; a node of its own never flushes them).
    pub fn telling(mut self, alerts: Arc<Alerts>) -> Self {
        self.alerts = Some(alerts);
        self
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn announce(&self, e: &Escalation, ctx: &mut Context<Self>) {
        let escalation = Arc::new(e.clone());
        if let Some(alerts) = &self.alerts {
            alerts.put(escalation.clone());
        }
        self.bus.publish(Event::EscalationChanged { escalation });
        let store = self.store.clone();
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

    fn prune(&mut self) {
        let before = self.now_ms().saturating_sub(self.retention_ms);
        let gone = self.book.prune_resolved(before);
        if gone > 0 {
            tracing::debug!(gone, "resolved escalations left memory");
        }
        metrics::gauge!(metric_names::ESCALATIONS_IN_MEMORY).set(self.book.len() as f64);
    }
}

impl Actor for EscalationDesk {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(secs(PRUNE_EVERY_S), |act, _| act.prune());
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
        let now = self.now_ms();
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
        let now = self.now_ms();
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
        if !self.store.writable() {
            return Box::pin(async {
                Err(EngineError::Unavailable(
                    "the store is unavailable; nothing was changed".into(),
                ))
            });
        }
        let was_open = self.book.get(&m.id).map(|e| e.is_open());
        let Some(e) = self.book.resolve(&m.id, m.note, self.now_ms()) else {
            let id = m.id.to_string();
            return Box::pin(async move { Err(EngineError::NotFound(format!("escalation {id}"))) });
        };
        let (bus, store, alerts) = (self.bus.clone(), self.store.clone(), self.alerts.clone());
        // Announced once stored, like every change a client acts on.
        Box::pin(async move {
            store
                .save_escalation(&e)
                .await
                .map_err(|err| EngineError::Unavailable(err.to_string()))?;
            if was_open == Some(true) {
                let escalation = Arc::new(e.clone());
                if let Some(alerts) = alerts {
                    alerts.put(escalation.clone());
                }
                bus.publish(Event::EscalationChanged { escalation });
            }
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
