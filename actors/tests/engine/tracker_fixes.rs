//! Fixes from tracking apps (`RiderHandle::tracker_fix`): the same slot, validator and
//! silence timers as a rider socket's fix; the verdict goes back to the caller, never to
//! the rider's socket.

use crate::support::*;
use dispatch_actors::domain::gps::FixVerdict;

/// A rider connected (its outbox read) and, if `online`, online at no position yet.
async fn rider(engine: &Engine, online: bool) -> TestRider {
    let view = engine.create_rider("R".into()).await.unwrap();
    let outbox = Outbox::new(256);
    engine
        .attach_rider(&view.rider_id, outbox.clone())
        .await
        .unwrap();
    let mut r = TestRider::from_parts(engine, view.rider_id, outbox);
    if online {
        r.cmd(RiderCommand::SetOnline(true));
    }
    settle().await;
    r.take();
    r
}

fn accepted(v: &FixVerdict) -> bool {
    matches!(v, FixVerdict::Accept(_))
}

#[actix_rt::test]
async fn a_tracker_fix_is_judged_as_a_socket_fix_and_answered_to_its_caller() {
    let engine = start(cfg());
    let mut r = rider(&engine, true).await;
    let app = engine.rider_handle(&r.id).unwrap();
    let now = engine.now_ms();

    let v = app
        .tracker_fix(fix_at(north(100.0), now), false)
        .await
        .unwrap();
    assert!(accepted(&v), "{v:?}");
    let view = r.view().await;
    assert_eq!(
        (view.location, view.last_seen_ms),
        (Some(north(100.0)), Some(now))
    );

    // Refused by the socket's rules; the verdict says why and the socket hears nothing.
    let bad = RawFix {
        lat: Some(91.0),
        ..fix_at(north(100.0), now + 1)
    };
    let v = app.tracker_fix(bad, false).await.unwrap();
    assert!(
        matches!(v, FixVerdict::Reject(ref why) if why.contains("lat")),
        "{v:?}"
    );
    let far = fix_at(north(50_000.0), now + 1_000);
    assert!(matches!(
        app.tracker_fix(far, false).await.unwrap(),
        FixVerdict::Reject(_)
    ));
    let old = fix_at(north(120.0), now - 1);
    assert_eq!(
        app.tracker_fix(old, false).await.unwrap(),
        FixVerdict::Ignore
    );
    assert_eq!(r.take(), vec![], "nothing is told to the rider's socket");
    assert_eq!(r.view().await.location, Some(north(100.0)));
}

#[actix_rt::test]
async fn a_newer_fix_replaces_a_waiting_tracker_fix_and_closes_its_channel() {
    let engine = start(cfg());
    let r = rider(&engine, true).await;
    let app = engine.rider_handle(&r.id).unwrap();
    let now = engine.now_ms();
    // Both queued before the actor runs: the first is shed, unanswered.
    let first = app.tracker_fix(fix_at(north(100.0), now), false);
    let second = app.tracker_fix(fix_at(north(110.0), now + 1_000), false);
    assert!(first.await.is_err(), "a shed fix gets no verdict");
    assert!(accepted(&second.await.unwrap()));
    // A socket fix replaces a waiting tracker fix the same way.
    let waiting = app.tracker_fix(fix_at(north(120.0), now + 2_000), false);
    r.cmd(RiderCommand::Location(fix_at(north(130.0), now + 3_000)));
    assert!(waiting.await.is_err());
    settle().await;
    assert_eq!(r.view().await.location, Some(north(130.0)));
    // A command after a waiting tracker fix: the fix is applied first, and answered.
    let ahead = app.tracker_fix(fix_at(north(140.0), now + 4_000), false);
    r.cmd(RiderCommand::SetOnline(false));
    assert!(accepted(&ahead.await.unwrap()));
    assert_eq!(r.view().await.status, RiderStatus::Offline);
}

#[actix_rt::test]
async fn a_tracker_fix_brings_a_rider_online_only_when_asked() {
    let engine = start(cfg());
    let r = rider(&engine, false).await;
    let app = engine.rider_handle(&r.id).unwrap();
    let now = engine.now_ms();
    assert!(accepted(
        &app.tracker_fix(fix_at(north(100.0), now), false)
            .await
            .unwrap()
    ));
    let view = r.view().await;
    assert_eq!(
        (view.status, view.location),
        (RiderStatus::Offline, Some(north(100.0)))
    );
    // A refused fix does not bring it online either.
    let bad = RawFix {
        lon: None,
        ..fix_at(north(100.0), now + 1_000)
    };
    assert!(!accepted(&app.tracker_fix(bad, true).await.unwrap()));
    assert_eq!(r.view().await.status, RiderStatus::Offline);
    assert!(accepted(
        &app.tracker_fix(fix_at(north(105.0), now + 2_000), true)
            .await
            .unwrap()
    ));
    assert_eq!(r.view().await.status, RiderStatus::Idle);
}

#[actix_rt::test]
async fn tracker_fixes_reset_the_silence_timers() {
    let engine = start_with(|c| {
        c.timers.rider_silent_s = 10.0;
        c.timers.rider_lost_s = 60.0;
    });
    let r = rider(&engine, true).await;
    let app = engine.rider_handle(&r.id).unwrap();
    // 30 s of fixes through the app, one every 5 s: never stale.
    for i in 0..6 {
        let fix = fix_at(north(100.0 + i as f64), engine.now_ms());
        assert!(accepted(&app.tracker_fix(fix, false).await.unwrap()));
        advance(5.0).await;
        assert_eq!(r.view().await.status, RiderStatus::Idle, "after fix {i}");
    }
    advance(6.0).await;
    assert_eq!(r.view().await.status, RiderStatus::Stale);
    // The next accepted fix clears it, as a socket fix would.
    let fix = fix_at(north(110.0), engine.now_ms());
    assert!(accepted(&app.tracker_fix(fix, false).await.unwrap()));
    assert_eq!(r.view().await.status, RiderStatus::Idle);
}
