//! Which engine events become webhook events, and the body each delivery carries. The
//! engine's bus is the source (the same past-tense events the hub and the event stream
//! read); nothing in the state machine knows about webhooks.

use super::model::EventKind;
use dispatch_actors::domain::WebhookEventId;
use dispatch_actors::events::Event;
use serde_json::{json, Value};

/// The webhook event an engine event stands for, with its `data`; None for events no
/// one can subscribe to (positions, offers, riders, merchants) and for order changes that
/// keep the status.
pub fn classify(event: &Event) -> Option<(EventKind, Value)> {
    match event {
        Event::OrderChanged {
            order,
            previous_status,
        } if *previous_status != Some(order.status) => Some((
            EventKind::OrderStatusChanged,
            json!({"order": &**order, "previous_status": previous_status}),
        )),
        Event::EscalationChanged { escalation } => {
            let kind = if !escalation.is_open() {
                EventKind::EscalationResolved
            } else if escalation.level <= 1 {
                EventKind::EscalationOpened
            } else {
                EventKind::EscalationRaised
            };
            Some((kind, json!({"escalation": &**escalation})))
        }
        _ => None,
    }
}

/// The request body: `{id, type, created_ms, data}`, the same bytes on every attempt.
pub fn body(id: &WebhookEventId, kind: EventKind, created_ms: u64, data: Value) -> String {
    json!({"id": id, "type": kind.as_str(), "created_ms": created_ms, "data": data}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatch_actors::domain::escalation::{Escalation, EscalationKind, ResolvedBy};
    use dispatch_actors::domain::{EscalationId, MerchantId, OrderId};
    use std::sync::Arc;

    fn escalation(level: u32, resolved: bool) -> Event {
        Event::EscalationChanged {
            escalation: Arc::new(Escalation {
                escalation_id: EscalationId::parse("e_1").unwrap(),
                kind: EscalationKind::NoRider,
                level,
                order_id: Some(OrderId::parse("o_1").unwrap()),
                rider_id: None,
                opened_ms: 5,
                resolved_ms: resolved.then_some(9),
                resolved_by: resolved.then_some(ResolvedBy::System),
                message: "no rider".into(),
                note: None,
            }),
        }
    }

    #[test]
    fn escalations_are_opened_raised_or_resolved() {
        let kind = |e: &Event| classify(e).map(|(k, _)| k);
        assert_eq!(
            kind(&escalation(1, false)),
            Some(EventKind::EscalationOpened)
        );
        assert_eq!(
            kind(&escalation(3, false)),
            Some(EventKind::EscalationRaised)
        );
        assert_eq!(
            kind(&escalation(3, true)),
            Some(EventKind::EscalationResolved)
        );
        let (_, data) = classify(&escalation(1, false)).unwrap();
        assert_eq!(data["escalation"]["escalation_id"], "e_1");
        assert_eq!(data["escalation"]["kind"], "no_rider");
    }

    #[test]
    fn other_events_are_not_webhook_events() {
        let reminder = Event::MerchantReminded {
            merchant_id: MerchantId::parse("m_1").unwrap(),
            order_id: OrderId::parse("o_1").unwrap(),
            message: "accept it".into(),
        };
        assert!(classify(&reminder).is_none());
    }

    #[test]
    fn the_body_names_the_event_and_carries_its_data() {
        let id = WebhookEventId::parse("evt_abc").unwrap();
        let b = body(&id, EventKind::EscalationOpened, 42, json!({"x": 1}));
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(
            v,
            json!({"id": "evt_abc", "type": "escalation.opened", "created_ms": 42, "data": {"x": 1}})
        );
    }
}
