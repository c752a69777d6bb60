//! GPS intake: a rider's fixes go through its latest-fix-wins slot. Fixes sent back to back
//! (nothing else between them) reach the rider's actor as the last of them; other commands
//! keep their place among the fixes.
//!
//! Deterministic: the test's thread is the engine's, so the rider's actor runs only when
//! the test awaits. Everything sent in between is queued, as when fixes arrive faster than
//! the actor applies them.

use crate::support::*;
use dispatch_actors::domain::OfferId;

/// A fix whose latitude is out of range: refused, with a message naming the latitude.
fn bad_lat(ts_ms: u64) -> RawFix {
    RawFix {
        lat: Some(91.0),
        ..fix_at(centre(), ts_ms)
    }
}

/// A fix from 60 s in the future: refused, with a message saying so.
fn from_the_future(now_ms: u64) -> RawFix {
    fix_at(centre(), now_ms + 60_000)
}

/// The messages of the `error` notices in `ns`, in order, with their codes.
fn error_messages(ns: &[RiderNotice]) -> Vec<(String, String)> {
    ns.iter()
        .filter_map(|n| match n {
            RiderNotice::Error { code, message } => Some((code.clone(), message.clone())),
            _ => None,
        })
        .collect()
}

/// A rider that is connected but has not gone online (welcome read).
async fn connected_offline(engine: &Engine) -> TestRider {
    let view = engine.create_rider("R".into()).await.unwrap();
    let outbox = Outbox::new(256);
    engine
        .attach_rider(&view.rider_id, outbox.clone())
        .await
        .unwrap();
    outbox.drain();
    TestRider::from_parts(engine, view.rider_id, outbox)
}

#[actix_rt::test]
async fn a_burst_of_fixes_is_applied_as_its_last_fix() {
    let engine = start(cfg());
    let mut r = TestRider::online_at(&engine, "R", north(100.0)).await;
    let t0 = engine.now_ms();
    advance(200.0).await;

    // 200 fixes north at 10 m/s, 1 s apart in their own time (the last one now), sent
    // at once.
    let track: Vec<(GeoPoint, u64)> = (1..=200u64)
        .map(|i| (north(100.0 + 10.0 * i as f64), t0 + i * 1_000))
        .collect();
    for (p, ts) in &track {
        r.cmd(RiderCommand::Location(fix_at(*p, *ts)));
    }
    settle().await;
    let v = r.view().await;
    let (last_at, last_ts) = *track.last().unwrap();
    assert_eq!(v.location, Some(last_at), "the last fix wins");
    assert_eq!(v.last_seen_ms, Some(last_ts));

    // Invalid fixes followed by a valid one, sent at once: only the valid one reaches the
    // actor (the others were replaced before it looked), so the rider hears nothing.
    let now = engine.now_ms();
    for _ in 0..99 {
        r.cmd(RiderCommand::Location(bad_lat(now)));
    }
    let next = last_at.destination(90.0, 5.0);
    r.cmd(RiderCommand::Location(fix_at(next, now)));
    settle().await;
    assert_eq!(
        error_messages(&r.take()),
        vec![],
        "shed fixes are not answered"
    );
    assert_eq!(r.view().await.location, Some(next));
}

#[actix_rt::test]
async fn a_fix_keeps_its_place_among_the_riders_other_commands() {
    let engine = start(cfg());
    let mut r = TestRider::online_at(&engine, "R", north(100.0)).await;
    let now = engine.now_ms();

    // Fix, command, fix, fix: the first fix is applied before the command, the two after
    // it collapse into the last.
    r.cmd(RiderCommand::Location(bad_lat(now)));
    r.cmd(RiderCommand::Decline {
        offer_id: OfferId::generate(),
    });
    r.cmd(RiderCommand::Location(bad_lat(now)));
    r.cmd(RiderCommand::Location(from_the_future(now)));
    settle().await;
    let told = error_messages(&r.take());
    let codes: Vec<&str> = told.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        codes,
        [
            "invalid_location",
            "offer_not_available",
            "invalid_location"
        ],
        "{told:?}"
    );
    assert!(told[0].1.contains("lat"), "the fix before: {told:?}");
    assert!(told[2].1.contains("future"), "the last fix after: {told:?}");
}

#[actix_rt::test]
async fn status_changes_right_after_fixes_find_the_rider_where_it_said() {
    let engine = start(cfg());
    let mut r = connected_offline(&engine).await;
    let nearby = |engine: Engine| async move {
        engine
            .riders_nearby(centre(), 5_000.0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|(n, _)| n.location)
            .collect::<Vec<_>>()
    };

    // Fixes while offline, `online`, more fixes, all at once: the rider is listed where
    // it last said it was.
    let now = engine.now_ms();
    r.cmd(RiderCommand::Location(fix_at(north(100.0), now - 3_000)));
    r.cmd(RiderCommand::Location(fix_at(north(110.0), now - 2_000)));
    r.cmd(RiderCommand::SetOnline(true));
    r.cmd(RiderCommand::Location(fix_at(north(120.0), now - 1_000)));
    r.cmd(RiderCommand::Location(fix_at(north(130.0), now)));
    settle().await;
    assert_eq!(r.view().await.status, RiderStatus::Idle);
    assert_eq!(nearby(engine.clone()).await, vec![north(130.0)]);

    // A fix then `offline`: the fix is kept, and the rider leaves the matcher.
    advance(1.0).await;
    r.cmd(RiderCommand::Location(fix_at(
        north(140.0),
        engine.now_ms(),
    )));
    r.cmd(RiderCommand::SetOnline(false));
    settle().await;
    let v = r.view().await;
    assert_eq!(
        (v.status, v.location),
        (RiderStatus::Offline, Some(north(140.0)))
    );
    assert_eq!(nearby(engine.clone()).await, vec![]);
    assert!(errors(&r.take()).is_empty());
}
