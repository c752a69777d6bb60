//! Fixes from tracking apps (PROTOCOL.md, "Tracking apps"): OsmAnd / Traccar Client on
//! their own listener (query, form, Traccar's JSON), OwnTracks over HTTP with Basic auth;
//! devices registered and revoked; the same validation, rate limit and silence timers as
//! the rider socket. OwnTracks over MQTT is in `tracking_mqtt`.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// `POST /riders/{id}/devices` as `token`.
pub async fn register_device_as(app: &TestApp, rider_id: &str, token: &str) -> Resp {
    let path = format!("/riders/{rider_id}/devices");
    app.post(&path, Some(token), &json!({})).await
}

/// A device registered for the rider by the dispatcher; its id.
pub async fn device_for(app: &TestApp, rider_id: &str) -> String {
    let r = register_device_as(app, rider_id, &app.dispatcher)
        .await
        .expect(201);
    let id = r["device_id"].as_str().unwrap().to_string();
    assert!(id.len() >= 20, "a device id is a long secret: {id}");
    id
}

/// The rider as the dispatcher's fleet list shows it.
pub async fn rider_view(app: &TestApp, rider_id: &str) -> Value {
    let all = app.get("/riders", Some(&app.dispatcher)).await.expect(200);
    all.as_array()
        .unwrap()
        .iter()
        .find(|r| r["rider_id"] == rider_id)
        .cloned()
        .expect("the rider is listed")
}

/// The rider's position and its time, once the server has a position for it.
pub async fn position(app: &TestApp, rider_id: &str) -> Option<((f64, f64), u64)> {
    let r = rider_view(app, rider_id).await;
    let at = (
        r["location"]["lat"].as_f64()?,
        r["location"]["lon"].as_f64()?,
    );
    Some((at, r["last_seen_ms"].as_u64()?))
}

#[track_caller]
fn assert_at(pos: Option<((f64, f64), u64)>, at: (f64, f64), ts_ms: u64) {
    let ((lat, lon), seen) = pos.expect("the rider has a position");
    assert!(
        (lat - at.0).abs() < 1e-9 && (lon - at.1).abs() < 1e-9,
        "rider at {lat},{lon}, expected {at:?}"
    );
    assert_eq!(seen, ts_ms);
}

/// A request to the OsmAnd listener: `query` in the URL, an optional body with its type.
async fn osmand(app: &TestApp, method: Method, query: &str, body: Option<(&str, String)>) -> Resp {
    let base = app.osmand_base.as_ref().expect("the OsmAnd listener is on");
    let mut rb = app.client.request(method, format!("{base}/?{query}"));
    if let Some((content_type, body)) = body {
        rb = rb.header("content-type", content_type).body(body);
    }
    let r = rb.send().await.expect("the request is sent");
    let status = r.status();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, text, body }
}

/// OsmAnd's fields as Traccar Client sends them: `speed` in knots.
fn fields(device: &str, at: (f64, f64), ts_s: u64) -> String {
    format!(
        "id={device}&lat={}&lon={}&timestamp={ts_s}&speed=9.7&bearing=45&accuracy=5&altitude=12&batt=80",
        at.0, at.1
    )
}

/// Traccar Client 9's JSON body.
fn traccar_json(device: &str, at: (f64, f64), ts_ms: u64) -> String {
    let iso = time::OffsetDateTime::from_unix_timestamp_nanos(ts_ms as i128 * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    json!({"location": {"timestamp": iso, "coords": {"latitude": at.0, "longitude": at.1,
        "accuracy": 5, "speed": 4.2, "heading": 90, "altitude": 12}, "is_moving": true,
        "odometer": 0, "event": "motionchange", "battery": {"level": 0.8, "is_charging": false},
        "activity": {"type": "in_vehicle"}, "extras": {}}, "device_id": device})
    .to_string()
}

/// OwnTracks' location message (`vel` in km/h).
pub fn owntracks_location(at: (f64, f64), ts_s: u64) -> Value {
    json!({"_type": "location", "lat": at.0, "lon": at.1, "tst": ts_s, "acc": 8, "vel": 18,
        "cog": 270, "batt": 77, "tid": "RD", "conn": "m", "t": "u"})
}

/// `POST /api/v1/owntracks` with Basic auth (`None`: no credentials at all).
async fn owntracks(app: &TestApp, creds: Option<(&str, &str)>, body: &Value) -> Resp {
    let mut rb = app
        .client
        .post(format!("{}/api/v1/owntracks", app.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some((user, password)) = creds {
        rb = rb.basic_auth(user, Some(password));
    }
    let r = rb.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, text, body }
}

/// A time that whole seconds can name, a little in the past, so that a second fix sent
/// right after one at "now" is still newer.
fn past_s(ago_s: u64) -> u64 {
    now_ms() / 1000 - ago_s
}

#[actix_web::test]
async fn each_osmand_format_moves_the_rider() {
    let app = spawn_app(|_| {}).await;
    let (rider, _) = app.create_rider().await;
    let device = device_for(&app, &rider).await;
    assert_eq!(position(&app, &rider).await, None);

    // GET with the fields in the query string (OsmAnd, older Traccar Client).
    let (t0, a) = (past_s(60), offset(SHOP, 100.0, 0.0));
    osmand(&app, Method::GET, &fields(&device, a, t0), None)
        .await
        .expect(200);
    assert_at(position(&app, &rider).await, a, t0 * 1000);

    // POST with a form body.
    let b = offset(SHOP, 200.0, 0.0);
    let form = fields(&device, b, t0 + 10);
    let form_type = "application/x-www-form-urlencoded";
    osmand(&app, Method::POST, "", Some((form_type, form)))
        .await
        .expect(200);
    assert_at(position(&app, &rider).await, b, (t0 + 10) * 1000);

    // POST with Traccar Client's JSON (ms precision, ISO 8601).
    let (c, t_ms) = (offset(SHOP, 300.0, 0.0), (t0 + 20) * 1000 + 250);
    let body = traccar_json(&device, c, t_ms);
    osmand(&app, Method::POST, "", Some(("application/json", body)))
        .await
        .expect(200);
    assert_at(position(&app, &rider).await, c, t_ms);

    // An older fix than the last (an app catching up on its buffer) is ignored, not
    // refused, so the app moves on; the position stays.
    osmand(&app, Method::GET, &fields(&device, a, t0 + 5), None)
        .await
        .expect(200);
    assert_at(position(&app, &rider).await, c, t_ms);
}

#[actix_web::test]
async fn owntracks_http_takes_locations_with_basic_auth() {
    let app = spawn_app(|_| {}).await;
    let (rider, _) = app.create_rider().await;
    let (other, _) = app.create_rider().await;
    let device = device_for(&app, &rider).await;
    let others_device = device_for(&app, &other).await;

    let (t0, a) = (past_s(30), offset(SHOP, 0.0, 150.0));
    let r = owntracks(&app, Some((&rider, &device)), &owntracks_location(a, t0)).await;
    assert_eq!(r.expect(200), json!([]));
    assert_at(position(&app, &rider).await, a, t0 * 1000);

    // Other message types are answered and ignored.
    let lwt = json!({"_type": "lwt", "tst": t0 + 1});
    let r = owntracks(&app, Some((&rider, &device)), &lwt).await;
    assert_eq!(r.expect(200), json!([]));
    assert_at(position(&app, &rider).await, a, t0 * 1000);

    // Wrong password, another rider's device, no credentials: 401, nothing stored.
    let b = offset(SHOP, 0.0, 300.0);
    let fix = owntracks_location(b, t0 + 10);
    for creds in [
        Some((rider.as_str(), "not-a-device-0123456789")),
        Some((rider.as_str(), others_device.as_str())),
        Some(("r_nobody", device.as_str())),
        None,
    ] {
        let r = owntracks(&app, creds, &fix).await;
        r.expect_code(401, "unauthorized", &format!("{creds:?}"));
    }
    assert_at(position(&app, &rider).await, a, t0 * 1000);
    assert_eq!(position(&app, &other).await, None);

    // A broken location is 400 and stores nothing.
    let broken = json!({"_type": "location", "lon": b.1, "tst": t0 + 10});
    let r = owntracks(&app, Some((&rider, &device)), &broken).await;
    r.expect_error(400, "invalid_input");
    assert_at(position(&app, &rider).await, a, t0 * 1000);
}

#[actix_web::test]
async fn an_unknown_or_revoked_device_is_404_and_changes_nothing() {
    let app = spawn_app(|_| {}).await;
    let (rider, token) = app.create_rider().await;
    let t0 = past_s(60);
    let a = offset(SHOP, 50.0, 0.0);

    let r = osmand(
        &app,
        Method::GET,
        &fields("never-registered-0123456789", a, t0),
        None,
    )
    .await;
    r.expect_error(404, "not_found");
    assert_eq!(position(&app, &rider).await, None);

    let device = device_for(&app, &rider).await;
    osmand(&app, Method::GET, &fields(&device, a, t0), None)
        .await
        .expect(200);
    // The rider revokes it itself.
    let path = format!("/riders/{rider}/devices/{device}");
    let r = app
        .raw(Method::DELETE, &path, Some(&token), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let b = offset(SHOP, 150.0, 0.0);
    let r = osmand(&app, Method::GET, &fields(&device, b, t0 + 10), None).await;
    r.expect_error(404, "not_found");
    let json_fix = traccar_json(&device, b, (t0 + 10) * 1000);
    let r = osmand(&app, Method::POST, "", Some(("application/json", json_fix))).await;
    r.expect_error(404, "not_found");
    let r = owntracks(
        &app,
        Some((&rider, &device)),
        &owntracks_location(b, t0 + 10),
    )
    .await;
    r.expect_code(401, "unauthorized", "owntracks with a revoked device");
    assert_at(position(&app, &rider).await, a, t0 * 1000);
    // Revoked already: 404.
    let r = app
        .raw(Method::DELETE, &path, Some(&token), None, &[])
        .await;
    r.expect_error(404, "not_found");
}

#[actix_web::test]
async fn an_invalid_fix_is_400_and_changes_nothing() {
    let app = spawn_app(|_| {}).await;
    let (rider, _) = app.create_rider().await;
    let device = device_for(&app, &rider).await;
    let (t0, a) = (past_s(60), offset(SHOP, 100.0, 0.0));
    osmand(&app, Method::GET, &fields(&device, a, t0), None)
        .await
        .expect(200);
    let far = offset(SHOP, 20_000.0, 0.0);
    let future_s = now_ms() / 1000 + 3600;
    for (what, query) in [
        (
            "latitude out of range",
            fields(&device, (95.0, a.1), t0 + 10),
        ),
        (
            "no timestamp",
            format!("id={device}&lat={}&lon={}", a.0, a.1),
        ),
        (
            "not a number",
            format!("id={device}&lat=north&lon={}&timestamp={}", a.1, t0 + 10),
        ),
        ("an hour ahead", fields(&device, a, future_s)),
        // 20 km in 10 s: the implied speed the socket's validator refuses too.
        ("a teleport", fields(&device, far, t0 + 10)),
        (
            "no id",
            format!("lat={}&lon={}&timestamp={}", a.0, a.1, t0 + 10),
        ),
    ] {
        let r = osmand(&app, Method::GET, &query, None).await;
        r.expect_code(400, "invalid_input", what);
    }
    let bad_json = json!({"device_id": device, "location": {"timestamp": "yesterday",
        "coords": {"latitude": a.0, "longitude": a.1}}});
    let r = osmand(
        &app,
        Method::POST,
        "",
        Some(("application/json", bad_json.to_string())),
    )
    .await;
    r.expect_code(400, "invalid_input", "a JSON fix without a time");
    assert_at(position(&app, &rider).await, a, t0 * 1000);
    let metrics = app.get("/metrics", None).await.text;
    let invalid = metrics
        .lines()
        .find(|l| {
            l.starts_with("dispatch_tracker_fixes_total")
                && l.contains("source=\"osmand\"")
                && l.contains("outcome=\"invalid\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .expect("the invalid osmand fixes are counted");
    assert!(invalid >= 6.0, "{invalid}");
}

#[actix_web::test]
async fn only_the_dispatcher_or_the_rider_itself_registers_its_devices() {
    let app = spawn_app(|_| {}).await;
    let (rider, token) = app.create_rider().await;
    let (_, other_token) = app.create_rider().await;
    let c = app.customer().await;

    let own = register_device_as(&app, &rider, &token).await.expect(201);
    let own = own["device_id"].as_str().unwrap().to_string();
    let refused = register_device_as(&app, &rider, &other_token).await;
    refused.expect_error(403, "forbidden");
    register_device_as(&app, &rider, &c.token)
        .await
        .expect_error(403, "forbidden");
    let path = format!("/riders/{rider}/devices");
    app.post(&path, None, &json!({}))
        .await
        .expect_error(401, "unauthorized");
    register_device_as(&app, "r_nosuchrider", &app.dispatcher)
        .await
        .expect_error(404, "not_found");
    // Another rider cannot revoke it either; it still works afterwards.
    let del = format!("/riders/{rider}/devices/{own}");
    let r = app
        .raw(Method::DELETE, &del, Some(&other_token), None, &[])
        .await;
    r.expect_error(403, "forbidden");
    let a = offset(SHOP, 10.0, 0.0);
    osmand(&app, Method::GET, &fields(&own, a, past_s(5)), None)
        .await
        .expect(200);
}

#[actix_web::test]
async fn a_fix_leaves_an_offline_rider_offline_unless_sets_online() {
    for sets_online in [false, true] {
        let app = spawn_app(|s| s.ingest.sets_online = sets_online).await;
        let (rider, _) = app.create_rider().await;
        let device = device_for(&app, &rider).await;
        let near = offset(SHOP, 100.0, 100.0);
        let r = owntracks(
            &app,
            Some((&rider, &device)),
            &owntracks_location(near, past_s(2)),
        )
        .await;
        r.expect(200);
        let view = rider_view(&app, &rider).await;
        assert!(view["location"].is_object(), "the fix is stored: {view}");
        if sets_online {
            assert_eq!(view["status"], "idle", "{view}");
            let listed = wait_for("the rider listed nearby", T, || async {
                app.nearby_rider(&rider).await
            })
            .await;
            assert_eq!(listed["status"], "idle");
        } else {
            assert_eq!(view["status"], "offline", "{view}");
            assert_eq!(app.nearby_rider(&rider).await, None);
        }
    }
}

#[actix_web::test]
async fn tracker_fixes_keep_an_online_rider_from_going_stale_and_are_rate_limited() {
    let app = spawn_app(|s| {
        s.timers.rider_silent_s = 2.0;
        s.timers.rider_lost_s = 30.0;
        s.rate_limit.rider_fixes_per_10s = 40;
        s.rate_limit.rider_fix_burst = 3;
    })
    .await;
    let mut r = app.rider_connected().await;
    r.online().await;
    let id = r.id.clone();
    wait_for("the rider online", T, || async {
        (rider_view(&app, &id).await["status"] == "idle").then_some(())
    })
    .await;
    let device = device_for(&app, &r.id).await;
    // Fixes through the app for 4 s (twice the silence timer), none through the socket:
    // each resets the silence timer, as a socket fix does.
    let start = std::time::Instant::now();
    let mut at = SHOP;
    let mut sent = 0u64;
    while start.elapsed() < Duration::from_secs(4) {
        at = offset(at, 5.0, 0.0);
        let json_fix = traccar_json(&device, at, now_ms());
        osmand(&app, Method::POST, "", Some(("application/json", json_fix)))
            .await
            .expect(200);
        sent += 1;
        assert_eq!(
            rider_view(&app, &r.id).await["status"],
            "idle",
            "fix {sent}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Silence: stale after the timer.
    wait_for("the rider to go stale", T, || async {
        (rider_view(&app, &id).await["status"] == "stale").then_some(())
    })
    .await;
    // A burst over the rider's fix allowance (3 at once, 4 per s): 429, not stored.
    let before = position(&app, &r.id).await;
    let mut answers = Vec::new();
    for i in 1..=6 {
        let q = fields(
            &device,
            offset(at, 5.0 * i as f64, 0.0),
            now_ms() / 1000 + i,
        );
        answers.push(osmand(&app, Method::GET, &q, None).await);
    }
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    let limited = answers
        .iter()
        .find(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .unwrap_or_else(|| panic!("no fix refused: {statuses:?}"));
    limited.expect_error(429, "rate_limited");
    assert_eq!(&statuses[..3], [200, 200, 200], "the burst passes");
    let after = position(&app, &r.id).await;
    assert_ne!(before, after, "the fixes within the allowance are stored");
}
