//! Scenario 4: the dispatcher's manual assign and unassign.

use crate::helpers::*;
use serde_json::{json, Value};

#[actix_web::test]
async fn manual_assign_withdraws_the_open_offer_and_unassign_dispatches_again() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let mut a = app.rider_at(offset(SHOP, 100.0, 0.0)).await;
    let mut b = app.rider_at(offset(SHOP, 0.0, 3000.0)).await;
    let id = app.accepted_order(&c, &m).await;
    let offer = a.expect_offer().await;
    assert_eq!(offer["order_id"], id.as_str());

    // Riders that cannot be assigned: unknown, never connected, connected but offline,
    // online but disconnected.
    let (never_connected, _) = app.create_rider().await;
    let offline = app.rider_connected().await;
    let mut gone = app.rider_at(offset(SHOP, 500.0, 0.0)).await;
    // Closing our side and reading the server's close frame: by then the server has
    // finished with the session.
    gone.ws.close().await;
    gone.ws.wait_closed(T).await;
    let before = app.order_state(&id).await;
    for rider in [
        "r_doesnotexist",
        never_connected.as_str(),
        offline.id.as_str(),
        gone.id.as_str(),
    ] {
        app.assign(&id, rider)
            .await
            .expect_error(409, "rider_unavailable");
    }
    let after = app.order_state(&id).await;
    assert_eq!(
        strip_eta(&before),
        strip_eta(&after),
        "refused assigns change nothing"
    );

    // Assign B: A's offer is withdrawn, B is told.
    let o = app.assign(&id, &b.id).await.expect(200);
    assert_eq!(o["status"], "assigned");
    assert_eq!(o["rider_id"], b.id.as_str());
    let closed = a.ws.recv_type("offer_closed", T).await;
    assert_eq!(closed["offer_id"], offer["offer_id"]);
    assert_eq!(closed["reason"], "withdrawn");
    let assigned = b.ws.recv_type("assigned", T).await;
    assert_eq!(assigned["order"]["order_id"], id.as_str());
    // A's accept of the withdrawn offer does nothing.
    a.accept_refused(&offer).await;
    assert_eq!(app.order_state(&id).await["rider_id"], b.id.as_str());

    // Unassign: back to accepted, B told `dispatcher`, and the order is dispatched again
    // (to A, the nearest idle rider).
    let o = app
        .order_call(&id, "unassign", &app.dispatcher, json!({}))
        .await
        .expect(200);
    assert_eq!(o["status"], "accepted");
    assert_eq!(o["rider_id"], Value::Null);
    let un = b.ws.recv_type("unassigned", T).await;
    assert_eq!(un["order_id"], id.as_str());
    assert_eq!(un["reason"], "dispatcher");
    let again = a.expect_offer().await;
    assert_eq!(again["order_id"], id.as_str());

    // Reassigning from one rider to another tells the first `reassigned`.
    app.assign(&id, &b.id).await.expect(200);
    b.ws.recv_type("assigned", T).await;
    a.ws.recv_until("offer_closed withdrawn", T, |v| {
        v["type"] == "offer_closed" && v["reason"] == "withdrawn"
    })
    .await;
    app.assign(&id, &a.id).await.expect(200);
    let un = b.ws.recv_type("unassigned", T).await;
    assert_eq!(un["reason"], "reassigned");
    a.ws.recv_type("assigned", T).await;
    assert_eq!(app.order_state(&id).await["rider_id"], a.id.as_str());
}
