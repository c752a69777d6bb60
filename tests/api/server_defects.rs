//! Server defects found in review: `/metrics` empty until the first event, hub maps that
//! only grew, and the dashboard tick that outlived the server.

use crate::helpers::*;
use dispatchd::hub::HubSizes;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

#[actix_web::test]
async fn the_first_scrape_of_a_fresh_server_shows_every_dispatch_series() {
    let app = spawn_app(|_| {}).await;
    let r = app.get("/metrics", None).await;
    assert_eq!(r.status.as_u16(), 200);
    for name in dispatch_actors::metric_names::ALL {
        assert!(
            r.text.contains(&format!("# TYPE {name} ")),
            "{name} is not described in the first scrape:\n{}",
            r.text
        );
        assert!(
            r.text
                .lines()
                .any(|l| !l.starts_with('#') && l.starts_with(name)),
            "{name} has no sample in the first scrape:\n{}",
            r.text
        );
    }
    // Series with known labels are there at zero (or more, other tests share the recorder).
    for series in [
        r#"dispatch_orders_total{status="delivered"}"#,
        r#"dispatch_offers_total{outcome="expired"}"#,
        r#"dispatch_riders{status="stale"}"#,
        r#"dispatch_escalations_total{kind="no_rider"}"#,
        r#"dispatch_hub_entries{map="trackers"}"#,
    ] {
        assert!(r.text.contains(series), "{series} missing:\n{}", r.text);
    }
    assert!(
        r.text.contains("# HELP dispatch_orders_total "),
        "metrics carry help text:\n{}",
        r.text
    );
}

async fn sizes_become(app: &TestApp, what: &str, ok: impl Fn(HubSizes) -> bool) -> HubSizes {
    wait_for(what, T, || async {
        let s = app.state.hub.sizes();
        ok(s).then_some(s)
    })
    .await
}

#[actix_web::test]
async fn sockets_leave_the_hub_when_they_close() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let id = app.placed_order(&c, &m).await;

    let mut track = app
        .ws(&format!("/ws/orders/{id}/track?token={}", c.token))
        .await
        .unwrap();
    track.recv_type("snapshot", T).await;
    let mut shop = app
        .ws(&format!("/ws/merchant?token={}", m.token))
        .await
        .unwrap();
    shop.recv_type("welcome", T).await;
    let (mut board, _) = app.dashboard().await;
    let s = app.state.hub.sizes();
    assert_eq!((s.trackers, s.merchants, s.dashboards), (1, 1, 1), "{s:?}");

    // Nothing is pushed to them afterwards: only the sockets' own end can empty the maps.
    track.close().await;
    shop.close().await;
    board.close().await;
    sizes_become(&app, "every socket to leave the hub", |s| {
        s.trackers == 0 && s.merchants == 0 && s.dashboards == 0
    })
    .await;
}

#[actix_web::test]
async fn a_riders_access_to_an_order_goes_when_the_order_is_final() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let mut rider = app.rider_at(offset(SHOP, 200.0, 0.0)).await;
    let id = app.accepted_order(&c, &m).await;
    rider.take_order(&id).await;
    let s = app.state.hub.sizes();
    assert_eq!((s.rider_access, s.order_riders), (1, 1), "{s:?}");
    // While it lives the rider reads it.
    app.get(&format!("/orders/{id}"), Some(&rider.token))
        .await
        .expect(200);

    rider.report("picked_up", &id).await;
    rider.report("delivered", &id).await;
    wait_for("the order to be delivered", T, || async {
        (app.order_state(&id).await["status"] == "delivered").then_some(())
    })
    .await;
    sizes_become(&app, "the hub to forget the final order", |s| {
        s.rider_access == 0 && s.order_riders == 0
    })
    .await;
    // The rider who delivered it still reads it (the engine answers from the order).
    app.get(&format!("/orders/{id}"), Some(&rider.token))
        .await
        .expect(200);
}

#[actix_web::test]
async fn the_dashboard_tick_stops_with_the_server() {
    let app = spawn_app(|_| {}).await;
    assert!(!app.state.hub.stopped(), "the hub runs while serving");
    dispatchd::startup::drain(&app.state);
    wait_for("the hub's tasks to stop", T, || async {
        app.state.hub.stopped().then_some(())
    })
    .await;
}

/// The extractors answer what the handlers answered when each read its caller and body by
/// hand: who may call comes before what the body says.
#[actix_web::test]
async fn refusals_keep_their_order_with_the_extractors() {
    use reqwest::Method;
    let (app, c, m) = spawn_shop(|_| {}).await;
    let id = app.placed_order(&c, &m).await;
    let mallory = app.customer().await;
    let bad = || Some(b"{not json".to_vec());
    let huge = || Some(vec![b' '; 65 * 1024]);

    // No token: 401, whatever the body.
    app.raw(Method::POST, "/orders", None, bad(), &[])
        .await
        .expect_error(401, "unauthorized");
    // The wrong role: 403 before the body is looked at.
    app.raw(Method::POST, "/orders", Some(&m.token), bad(), &[])
        .await
        .expect_error(403, "forbidden");
    app.raw(Method::POST, "/riders", Some(&c.token), bad(), &[])
        .await
        .expect_error(403, "forbidden");
    // Another's order: denied before its body is parsed or measured.
    let pay = format!("/orders/{id}/pay");
    assert_denied(
        &app.raw(Method::POST, &pay, Some(&mallory.token), bad(), &[])
            .await,
    );
    assert_denied(
        &app.raw(Method::POST, &pay, Some(&mallory.token), huge(), &[])
            .await,
    );
    // The owner's malformed or oversized body: 400 / 413 as before.
    let r = app
        .raw(Method::POST, &pay, Some(&c.token), bad(), &[])
        .await;
    r.expect_error(400, "invalid_input");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON body: "),
        "{}",
        r.text
    );
    app.raw(Method::POST, &pay, Some(&c.token), huge(), &[])
        .await
        .expect_error(413, "payload_too_large");
    // An empty body reads as {} where every field is optional.
    app.raw(
        Method::POST,
        &format!("/orders/{id}/cancel"),
        Some(&c.token),
        None,
        &[],
    )
    .await
    .expect(200);
}
