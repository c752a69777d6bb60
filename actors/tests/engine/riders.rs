//! Rider lifecycle: GPS validation, silence and loss, going offline, reconnecting.

use crate::support::*;

/// `cfg()` with the rider silence timers set: stale after `silent_s`, the order taken
/// back after `lost_s`.
fn silence_timers(silent_s: f64, lost_s: f64) -> EngineConfig {
    let mut c = cfg();
    c.timers.rider_silent_s = silent_s;
    c.timers.rider_lost_s = lost_s;
    c
}

/// An engine on `config` with rider A 300 m north, holding the order it accepted.
async fn a_holding_an_order(config: EngineConfig) -> (Engine, TestRider, OrderId) {
    let engine = start(config);
    let mut a = TestRider::online_at(&engine, "A", north(300.0)).await;
    let id = dispatched(&engine).await;
    a.accept_next().await;
    (engine, a, id)
}

#[actix_rt::test]
async fn invalid_fixes_are_refused_and_leave_the_position_unchanged() {
    let engine = start_with(|c| c.gps.max_speed_mps = 70.0);
    let start_at = north(100.0);
    let mut r = TestRider::online_at(&engine, "R", start_at).await;
    let first = r.view().await;
    assert_eq!(first.location, Some(start_at));
    let seen = first.last_seen_ms.unwrap();

    advance(1.0).await;
    let now = engine.now_ms();
    let good = |p: GeoPoint| fix_at(p, now);
    let bad = [
        (
            "NaN",
            RawFix {
                lat: Some(f64::NAN),
                ..good(start_at)
            },
        ),
        (
            "lat 91",
            RawFix {
                lat: Some(91.0),
                ..good(start_at)
            },
        ),
        (
            "lon missing",
            RawFix {
                lon: None,
                ..good(start_at)
            },
        ),
        (
            "ts missing",
            RawFix {
                ts_ms: None,
                ..good(start_at)
            },
        ),
        (
            "infinite lon",
            RawFix {
                lon: Some(f64::INFINITY),
                ..good(start_at)
            },
        ),
        ("31 s in the future", fix_at(start_at, now + 31_000)),
        // 10 km in one second
        ("teleport", good(start_at.destination(45.0, 10_000.0))),
    ];
    for (what, raw) in bad {
        r.cmd(RiderCommand::Location(raw));
        settle().await;
        let n = r.take();
        assert_eq!(
            errors(&n),
            vec!["invalid_location".to_string()],
            "{what}: {n:?}"
        );
        let v = r.view().await;
        assert_eq!(v.location, Some(start_at), "{what} moved the rider");
        assert_eq!(v.last_seen_ms, Some(seen), "{what} counted as heard");
    }

    // Older than the last accepted fix: ignored without a word.
    r.cmd(RiderCommand::Location(fix_at(north(120.0), seen - 1_000)));
    settle().await;
    assert!(r.take().is_empty(), "an old fix is ignored silently");
    assert_eq!(r.view().await.location, Some(start_at));

    // A plausible fix (50 m in ~1 s) is stored: the checks above could have failed.
    let next = start_at.destination(90.0, 50.0);
    r.cmd(RiderCommand::Location(fix_at(next, engine.now_ms())));
    settle().await;
    assert!(r.take().is_empty());
    let v = r.view().await;
    assert_eq!(v.location, Some(next));
    assert!(v.last_seen_ms.unwrap() > seen);
    // 29 s ahead is within the allowed clock skew.
    r.cmd(RiderCommand::Location(fix_at(
        next,
        engine.now_ms() + 29_000,
    )));
    settle().await;
    assert!(errors(&r.take()).is_empty());
}

#[actix_rt::test]
async fn a_silent_rider_turns_stale_then_loses_its_order() {
    let engine = start(silence_timers(10.0, 20.0));
    let [mut a, mut b] = riders_north(&engine, [("A", 300.0), ("B", 1200.0)]).await;
    let id = dispatched(&engine).await;
    a.take_next().await;

    // A sends nothing more; B keeps reporting.
    advance_fresh(9.0, &[&b]).await;
    assert_eq!(a.view().await.status, RiderStatus::Busy);
    assert_eq!(count_of(&engine, EscalationKind::RiderSilent).await, 0);

    advance_fresh(2.0, &[&b]).await;
    assert_eq!(a.view().await.status, RiderStatus::Stale);
    assert_eq!(b.view().await.status, RiderStatus::Idle, "B is fresh");
    let silent = the_escalation(&engine, EscalationKind::RiderSilent).await;
    assert!(silent.is_open());
    assert_eq!(silent.rider_id.as_ref(), Some(&a.id));
    assert_eq!(silent.order_id.as_ref(), Some(&id));
    // Still A's order until rider_lost_s.
    let held = order(&engine, &id).await;
    assert_eq!(held.status, OrderStatus::Assigned);
    assert_eq!(held.rider_id.as_ref(), Some(&a.id));
    assert!(b.offers_for(&id).is_empty());

    advance_fresh(8.0, &[&b]).await;
    assert_eq!(rider_of(&engine, &id).await, Some(a.id.clone()));
    advance_fresh(2.0, &[&b]).await;
    assert_eq!(
        unassigned(&a.take()),
        vec![(id.clone(), UnassignReason::RiderLost)]
    );
    let back = order(&engine, &id).await;
    assert_eq!(back.status, OrderStatus::Accepted);
    assert_eq!(back.rider_id, None);
    let offer_b = b.offers_for(&id);
    assert_eq!(offer_b.len(), 1, "dispatched again to B");
    assert!(a.view().await.order_ids.is_empty());

    b.accept(&offer_b[0]);
    settle().await;
    assert_eq!(assigned(&b.take()).len(), 1);
    assert_eq!(rider_of(&engine, &id).await, Some(b.id.clone()));

    // A is heard again: the rider_silent escalation resolves by itself.
    assert!(
        the_escalation(&engine, EscalationKind::RiderSilent)
            .await
            .is_open(),
        "open while A is silent"
    );
    a.send_fix();
    settle().await;
    let silent = the_escalation(&engine, EscalationKind::RiderSilent).await;
    assert!(!silent.is_open());
    assert_eq!(silent.resolved_by, Some(ResolvedBy::System));
    assert_eq!(a.view().await.status, RiderStatus::Idle);
    assert_eq!(
        a.offers_for(&id).len(),
        1,
        "A is not offered its lost order again"
    );
}

/// The usual reconnect of a silent rider: a new socket, `status online`, then a fix.
/// Only the fix counts as being heard from; it resolves the escalation.
#[actix_rt::test]
async fn a_silent_rider_reconnecting_is_heard_only_through_a_fix() {
    let (engine, mut a, o) = a_holding_an_order(silence_timers(10.0, 40.0)).await;

    // A `status online` without a fix does not reset the silence timers.
    advance(5.0).await;
    a.cmd(RiderCommand::SetOnline(true));
    advance(5.5).await;
    assert_eq!(a.view().await.status, RiderStatus::Stale);
    assert!(the_escalation(&engine, EscalationKind::RiderSilent)
        .await
        .is_open());

    // Reconnect: welcome, status online (still stale: not heard yet), then a fix.
    advance(5.0).await;
    a.reconnect().await;
    a.cmd(RiderCommand::SetOnline(true));
    settle().await;
    assert!(matches!(
        a.take().first(),
        Some(RiderNotice::Welcome {
            status: RiderStatus::Stale,
            ..
        })
    ));
    assert_eq!(a.view().await.status, RiderStatus::Stale);
    a.send_fix();
    settle().await;
    assert_eq!(a.view().await.status, RiderStatus::Busy);
    let e = the_escalation(&engine, EscalationKind::RiderSilent).await;
    assert_eq!(e.resolved_by, Some(ResolvedBy::System));
    // Heard again in time: the order stays with A.
    advance(30.0).await;
    assert_eq!(rider_of(&engine, &o).await, Some(a.id.clone()));
}

/// Going offline does not park an order with a rider for ever: rider_lost_s still runs
/// while the rider holds an order it has not picked up.
#[actix_rt::test]
async fn a_rider_going_offline_with_an_unpicked_order_still_loses_it() {
    let (engine, mut a, id) = a_holding_an_order(silence_timers(10.0, 20.0)).await;
    a.cmd(RiderCommand::SetOnline(false));
    settle().await;
    assert_eq!(a.view().await.status, RiderStatus::Offline);
    assert_eq!(a.view().await.order_ids, vec![id.clone()], "still holds it");

    let mut b = TestRider::online_at(&engine, "B", north(1200.0)).await;
    advance_fresh(19.0, &[&b]).await;
    assert_eq!(rider_of(&engine, &id).await, Some(a.id.clone()));
    assert_eq!(
        the_escalation(&engine, EscalationKind::RiderSilent)
            .await
            .rider_id
            .as_ref(),
        Some(&a.id)
    );
    advance_fresh(2.0, &[&b]).await;
    assert_eq!(
        unassigned(&a.take()),
        vec![(id.clone(), UnassignReason::RiderLost)]
    );
    assert_eq!(b.offers_for(&id).len(), 1);
    assert_eq!(a.view().await.status, RiderStatus::Offline);
}

#[actix_rt::test]
async fn a_reconnect_gets_welcome_with_what_the_rider_holds() {
    let engine = start(cfg());
    let mut busy = TestRider::online_at(&engine, "Busy", north(200.0)).await;
    let o1 = dispatched(&engine).await;
    busy.take_next().await;

    let mut offered = TestRider::online_at(&engine, "Offered", north(400.0)).await;
    let o2 = dispatched(&engine).await;
    let open = the_offer(&offered.take());
    assert_eq!(open.order_id, o2);

    // Both lose their connection and come back on a new one.
    engine.detach_rider(&busy.id, busy.outbox.clone());
    engine.detach_rider(&offered.id, offered.outbox.clone());
    settle().await;
    advance(2.0).await;
    busy.reconnect().await;
    offered.reconnect().await;
    let nb = busy.take();
    match nb.as_slice() {
        [RiderNotice::Welcome {
            rider_id,
            status,
            orders,
            offer,
            ..
        }] => {
            assert_eq!(rider_id, &busy.id);
            assert_eq!(*status, RiderStatus::Busy);
            assert_eq!(orders.len(), 1);
            assert_eq!(orders[0].order_id, o1);
            assert_eq!(orders[0].status, OrderStatus::Assigned);
            assert_eq!(*offer, None);
        }
        other => panic!("welcome expected: {other:?}"),
    }
    let no = offered.take();
    match no.as_slice() {
        [RiderNotice::Welcome {
            status,
            orders,
            offer,
            ..
        }] => {
            assert_eq!(*status, RiderStatus::Offered);
            assert!(orders.is_empty());
            assert_eq!(offer.as_ref(), Some(&open), "the open offer survives");
        }
        other => panic!("welcome expected: {other:?}"),
    }

    // A second attach replaces (closes) the first; the new one carries on.
    let old = offered.outbox.clone();
    offered.reconnect().await;
    assert!(old.is_closed());
    offered.take();
    offered.accept(&open);
    settle().await;
    assert_eq!(assigned(&offered.take()).len(), 1);
    assert_eq!(rider_of(&engine, &o2).await, Some(offered.id.clone()));
}
