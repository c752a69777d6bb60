//! Supervision timers and the escalation ladder: merchant accept, no rider, late pickup and delivery.

use crate::support::*;

#[actix_rt::test]
async fn an_unresponsive_merchant_is_escalated_then_the_order_cancelled() {
    let engine = start_with(|c| c.timers.merchant_accept_s = 10.0);
    let mut events = engine.subscribe();
    let o = paid_order(&engine).await;
    let id = o.order_id.clone();

    advance(9.8).await;
    assert_eq!(
        count_of(&engine, EscalationKind::MerchantUnresponsive).await,
        0
    );

    advance(0.4).await;
    let e = the_escalation(&engine, EscalationKind::MerchantUnresponsive).await;
    assert!(e.is_open());
    assert_eq!(e.level, 1);
    assert_eq!(e.order_id.as_ref(), Some(&id));
    assert_eq!(status_of(&engine, &id).await, OrderStatus::Paid);
    let mut reminded = false;
    while let Ok(ev) = events.try_recv() {
        if let Event::MerchantReminded { order_id, .. } = ev {
            reminded |= order_id == id;
        }
    }
    assert!(reminded, "the merchant is reminded");

    advance(9.4).await;
    assert_eq!(status_of(&engine, &id).await, OrderStatus::Paid);
    assert!(
        the_escalation(&engine, EscalationKind::MerchantUnresponsive)
            .await
            .is_open()
    );

    advance(0.6).await;
    let o = order(&engine, &id).await;
    assert_eq!(o.status, OrderStatus::Cancelled);
    assert!(o.reason.is_some());
    let e = the_escalation(&engine, EscalationKind::MerchantUnresponsive).await;
    assert!(!e.is_open());
    assert_eq!(e.level, 1);
    assert_eq!(e.resolved_by, Some(ResolvedBy::System));
    // The merchant can no longer accept it.
    assert!(matches!(
        engine.accept_order(&id, Some(0)).await.unwrap_err(),
        EngineError::InvalidTransition(_)
    ));
}

#[actix_rt::test]
async fn a_merchant_accept_resolves_the_unresponsive_escalation() {
    let engine = start_with(|c| c.timers.merchant_accept_s = 10.0);
    let o = paid_order(&engine).await;
    advance(10.5).await;
    assert!(
        the_escalation(&engine, EscalationKind::MerchantUnresponsive)
            .await
            .is_open()
    );
    engine.accept_order(&o.order_id, Some(0)).await.unwrap();
    settle().await;
    let e = the_escalation(&engine, EscalationKind::MerchantUnresponsive).await;
    assert_eq!(e.resolved_by, Some(ResolvedBy::System));
    advance(15.0).await;
    assert_eq!(
        order(&engine, &o.order_id).await.status,
        OrderStatus::Accepted,
        "not cancelled once accepted"
    );
}

#[actix_rt::test]
async fn no_rider_escalates_and_raises_its_level_until_assigned() {
    let engine = start_with(|c| c.timers.dispatch_remind_s = 10.0);
    let id = accepted_order(&engine).await.order_id;

    advance(9.8).await;
    assert_eq!(count_of(&engine, EscalationKind::NoRider).await, 0);
    advance(0.4).await;
    let e1 = the_escalation(&engine, EscalationKind::NoRider).await;
    assert_eq!(e1.level, 1);
    assert!(e1.is_open());
    assert_eq!(e1.order_id.as_ref(), Some(&id));

    advance(9.6).await;
    assert_eq!(level_of(&engine, EscalationKind::NoRider).await, 1);
    advance(0.4).await;
    let e2 = the_escalation(&engine, EscalationKind::NoRider).await;
    assert_eq!(e2.escalation_id, e1.escalation_id, "raised, not reopened");
    assert_eq!(e2.level, 2);
    assert!(e2.is_open());

    // A rider appears near the merchant: offered within a retry interval, accepts.
    let mut r = TestRider::online_at(&engine, "Late", north(700.0)).await;
    advance(2.5).await;
    let offer = the_offer(&r.take());
    assert_eq!(offer.order_id, id);
    assert!(the_escalation(&engine, EscalationKind::NoRider)
        .await
        .is_open());
    r.accept(&offer);
    settle().await;
    assert_eq!(assigned(&r.take()).len(), 1);
    let e = the_escalation(&engine, EscalationKind::NoRider).await;
    assert!(!e.is_open());
    assert_eq!(e.level, 2);
    assert_eq!(e.resolved_by, Some(ResolvedBy::System));
}

#[actix_rt::test]
async fn late_pickup_and_late_delivery_escalate_and_resolve() {
    let engine = start_with(|c| {
        c.timers.pickup_late_s = 10.0;
        c.timers.delivery_timeout_s = 15.0;
    });
    let mut r = TestRider::online_at(&engine, "R", north(600.0)).await;
    let id = dispatched(&engine).await;
    r.take_next().await;

    // pickup_late: counted from assignment (food was ready at accept).
    advance(9.7).await;
    assert_eq!(count_of(&engine, EscalationKind::PickupLate).await, 0);
    assert_eq!(reminders(&r.take()), 0);
    advance(0.4).await;
    let p1 = the_escalation(&engine, EscalationKind::PickupLate).await;
    assert_eq!((p1.level, p1.is_open()), (1, true));
    assert_eq!(p1.order_id.as_ref(), Some(&id));
    assert_eq!(p1.rider_id.as_ref(), Some(&r.id));
    assert_eq!(reminders(&r.take()), 1, "the rider is reminded");
    advance(10.0).await;
    let p2 = the_escalation(&engine, EscalationKind::PickupLate).await;
    assert_eq!(p2.escalation_id, p1.escalation_id);
    assert_eq!(p2.level, 2);
    assert_eq!(reminders(&r.take()), 1);

    r.picked_up(&id).await;
    assert_eq!(updated(&r.take())[0].status, OrderStatus::PickedUp);
    let p = the_escalation(&engine, EscalationKind::PickupLate).await;
    assert_eq!(p.resolved_by, Some(ResolvedBy::System));
    assert_eq!(p.level, 2);

    // delivery_timeout: counted from pickup.
    advance(14.7).await;
    assert_eq!(count_of(&engine, EscalationKind::DeliveryLate).await, 0);
    advance(0.4).await;
    let d1 = the_escalation(&engine, EscalationKind::DeliveryLate).await;
    assert_eq!((d1.level, d1.is_open()), (1, true));
    assert_eq!(reminders(&r.take()), 1);
    advance(15.0).await;
    let d2 = the_escalation(&engine, EscalationKind::DeliveryLate).await;
    assert_eq!(d2.escalation_id, d1.escalation_id);
    assert_eq!(d2.level, 2);
    // pickup_late stayed resolved, and was not raised again.
    assert_eq!(level_of(&engine, EscalationKind::PickupLate).await, 2);

    r.delivered(&id).await;
    assert_eq!(updated(&r.take())[0].status, OrderStatus::Delivered);
    let d = the_escalation(&engine, EscalationKind::DeliveryLate).await;
    assert_eq!(d.resolved_by, Some(ResolvedBy::System));
    assert!(engine.escalations(true).await.unwrap().is_empty());
    advance(40.0).await;
    assert!(
        engine.escalations(true).await.unwrap().is_empty(),
        "no timer outlives the order"
    );
}

#[actix_rt::test]
async fn ready_after_a_late_pickup_does_not_fire_the_timer_again_at_once() {
    let engine = start_with(|c| c.timers.pickup_late_s = 10.0);
    let mut r = TestRider::online_at(&engine, "Ann", north(300.0)).await;
    // prep 0: food ready at acceptance, so pickup is late 10 s after assignment
    let id = dispatched(&engine).await;
    r.accept_next().await;
    advance_fresh(10.5, &[&r]).await;
    let e = the_escalation(&engine, EscalationKind::PickupLate).await;
    assert_eq!(e.level, 1);
    engine
        .order_command(&id, OrderCommand::MarkReady)
        .await
        .unwrap();
    advance_fresh(2.0, &[&r]).await;
    assert_eq!(
        level_of(&engine, EscalationKind::PickupLate).await,
        1,
        "ready does not bring the next period forward"
    );
    advance_fresh(9.0, &[&r]).await;
    assert_eq!(
        level_of(&engine, EscalationKind::PickupLate).await,
        2,
        "the next period still comes"
    );
}
