//! The socket frames' JSON Schema (/api/v1/socket-frames.schema.json) against real frames
//! of all five sockets and the rider messages of docs/protocol.md.

use crate::helpers::*;
use crate::openapi::{assert_valid, fetch_json, openapi};
use serde_json::{json, Value};
use std::collections::BTreeSet;

async fn frames_schema(app: &TestApp) -> Value {
    fetch_json(app, "/api/v1/socket-frames.schema.json").await.1
}

/// A validator for one definition of the socket frames' schema.
fn frame_validator(frames: &Value, pointer: &str) -> jsonschema::Validator {
    let mut schema = frames.clone();
    schema["$ref"] = json!(pointer);
    schema.as_object_mut().unwrap().remove("anyOf");
    jsonschema::validator_for(&schema).expect("a valid schema")
}

#[actix_web::test]
async fn real_socket_frames_validate_against_the_served_schema() {
    let (app, customer, merchant) = spawn_shop(|_| {}).await;
    let (ct, frames) = fetch_json(&app, "/api/v1/socket-frames.schema.json").await;
    assert!(ct.starts_with("application/schema+json"), "{ct}");
    assert!(
        jsonschema::meta::is_valid(&frames),
        "not a valid JSON Schema"
    );
    // The sockets it describes are the document's, pointer for pointer.
    let doc = openapi(&app).await;
    let sockets = frames["x-sockets"].as_object().expect("x-sockets");
    let ws_paths: Vec<&String> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|p| p.starts_with("/ws/"))
        .collect();
    assert_eq!(ws_paths.len(), 5);
    for p in ws_paths {
        let linked = &doc["paths"][p]["get"]["x-socket-frames"];
        assert_eq!(&sockets[p], linked, "{p}");
        assert_eq!(linked["schema"], "/api/v1/socket-frames.schema.json");
    }
    let v = |p: &str| frame_validator(&frames, sockets[p]["server_to_client"].as_str().unwrap());
    let (to_rider, to_merchant, to_tracker, to_dashboard, to_share) = (
        v("/ws/rider"),
        v("/ws/merchant"),
        v("/ws/orders/{id}/track"),
        v("/ws/dispatch"),
        v("/ws/share"),
    );

    // One order from payment to delivery, every socket watching.
    let (mut dash, _) = app.dashboard().await;
    let (mut shop, _) = app.merchant_app(&merchant).await;
    let mut rider = app.rider_at(offset(SHOP, 200.0, 0.0)).await;
    rider.ws.send_text("not json".into()).await;
    rider.expect_error("invalid_message").await;
    let id = app.placed_order(&customer, &merchant).await;
    let (mut track, _) = app.track(&id, &customer.token).await;
    // A share link that shows the position: its socket gets every kind of its frames.
    let link = app
        .post(
            &format!("/orders/{id}/share-links"),
            Some(&customer.token),
            &json!({"ttl_s": 3600, "privacy": "status_and_position"}),
        )
        .await
        .expect(201);
    let token = link["token"].as_str().unwrap();
    let (mut share, _) = app
        .ws_with(&format!("/ws/share?token={token}"), "snapshot")
        .await;
    app.pay(&customer, &id).await;
    shop.recv_type("new_order", T).await;
    app.accept(&merchant, &id).await;
    let assigned = {
        let offer = rider.expect_offer().await;
        rider.accept(&offer).await
    };
    rider.move_to(offset(SHOP, 100.0, 0.0)).await;
    track.recv_type("rider_location", T).await;
    share.recv_type("rider_location", T).await;
    rider.move_to(SHOP).await;
    rider.report("picked_up", &id).await;
    rider.ws.recv_type("order_updated", T).await;
    rider.report("delivered", &id).await;
    track
        .recv_until("delivered", T, |f| {
            f["type"] == "status" && f["status"] == "delivered"
        })
        .await;
    share
        .recv_until("delivered", T, |f| {
            f["type"] == "status" && f["status"] == "delivered"
        })
        .await;
    dash.recv_type("updates", T).await;

    for (name, ws, validator) in [
        ("rider", &rider.ws, &to_rider),
        ("merchant", &shop, &to_merchant),
        ("tracking", &track, &to_tracker),
        ("dashboard", &dash, &to_dashboard),
        ("share", &share, &to_share),
    ] {
        let kinds: BTreeSet<&str> = ws.seen.iter().filter_map(|f| f["type"].as_str()).collect();
        assert!(kinds.len() >= 2, "{name} socket saw {kinds:?}");
        for frame in &ws.seen {
            assert_valid(validator, frame, &format!("{name} frame"));
        }
    }
    // …and the schema is not one that takes anything.
    let mut broken = assigned.clone();
    broken["order"].as_object_mut().unwrap().remove("order_id");
    assert!(!to_rider.is_valid(&broken), "an order without its id");
    let mut unknown = assigned;
    unknown["type"] = json!("teleported");
    assert!(!to_rider.is_valid(&unknown), "a frame type nobody sends");
    assert!(!to_merchant.is_valid(&json!({"type": "welcome", "orders": []})));
    // The share socket's snapshot is its own (the link's privacy and expiry with the order
    // as shared): the tracking socket's is not one.
    let snapshot = share.seen.iter().find(|f| f["type"] == "snapshot").unwrap();
    assert_valid(&to_share, snapshot, "share snapshot");
    let tracked = track.seen.iter().find(|f| f["type"] == "snapshot").unwrap();
    assert!(
        !to_share.is_valid(tracked),
        "the tracking snapshot, unshared"
    );
}

#[actix_web::test]
async fn rider_messages_from_the_protocol_validate_and_malformed_ones_do_not() {
    let app = spawn_app(|_| {}).await;
    let frames = frames_schema(&app).await;
    let pointer = frames["x-sockets"]["/ws/rider"]["client_to_server"]
        .as_str()
        .expect("the rider socket's client frames")
        .to_string();
    let messages = frame_validator(&frames, &pointer);
    // docs/protocol.md, "Rider → server": one of each.
    for ok in [
        json!({"type":"location","lat":31.2304,"lon":121.4737,"ts_ms":1_700_000_000_000u64}),
        json!({"type":"location","lat":31.2304,"lon":121.4737,"ts_ms":1_700_000_000_000u64,
            "accuracy_m":5,"speed_mps":4.2,"heading_deg":270}),
        json!({"type":"status","status":"online"}),
        json!({"type":"status","status":"offline"}),
        json!({"type":"shift","end_ms":1_700_000_360_000u64}),
        json!({"type":"shift","end_ms":null}),
        json!({"type":"accept","offer_id":"f_abc"}),
        json!({"type":"decline","offer_id":"f_abc"}),
        json!({"type":"decline","offer_id":"f_abc","reason":"too far"}),
        json!({"type":"picked_up","order_id":"o_abc"}),
        json!({"type":"delivered","order_id":"o_abc"}),
        json!({"type":"failed","order_id":"o_abc","reason":"customer not home"}),
        json!({"type":"release","order_id":"o_abc"}),
    ] {
        assert_valid(&messages, &ok, "a rider message from the protocol");
    }
    for bad in [
        json!({"type":"location","lat":"north","lon":121.4,"ts_ms":1}),
        json!({"type":"location","lat":91,"lon":121.4,"ts_ms":1}),
        json!({"type":"location","lon":121.4,"ts_ms":1}),
        json!({"type":"status","status":"asleep"}),
        json!({"type":"shift","end_ms":-5}),
        json!({"type":"accept"}),
        json!({"type":"accept","offer_id":"o_not_an_offer"}),
        json!({"type":"failed","order_id":"o_abc"}),
        json!({"type":"teleport"}),
        json!({"offer_id":"f_abc"}),
        json!(["accept"]),
    ] {
        assert!(!messages.is_valid(&bad), "validated: {bad}");
    }
}
