//! Scenario 5: every transition the state machine forbids is 409 `invalid_transition`
//! and leaves the order exactly as it was.

use crate::helpers::*;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Call {
    Pay,
    Accept,
    Reject,
    Ready,
    CancelByCustomer,
    CancelByDispatcher,
    Assign,
    Unassign,
    Fail,
}

const ALL: [Call; 9] = [
    Call::Pay,
    Call::Accept,
    Call::Reject,
    Call::Ready,
    Call::CancelByCustomer,
    Call::CancelByDispatcher,
    Call::Assign,
    Call::Unassign,
    Call::Fail,
];

struct World {
    app: TestApp,
    c: Customer,
    m: Merchant,
    rider: Rider,
}

impl World {
    async fn call(&self, id: &str, call: Call) -> Resp {
        let (path, token, body): (&str, &str, Value) = match call {
            Call::Pay => ("pay", &self.c.token, json!({"payment_ref": "again"})),
            Call::Accept => ("accept", &self.m.token, json!({"prep_time_s": 0})),
            Call::Reject => ("reject", &self.m.token, json!({"reason": "out of noodles"})),
            Call::Ready => ("ready", &self.m.token, json!({})),
            Call::CancelByCustomer => (
                "cancel",
                &self.c.token,
                json!({"reason": "changed my mind"}),
            ),
            Call::CancelByDispatcher => ("cancel", &self.app.dispatcher, json!({})),
            Call::Assign => (
                "assign",
                &self.app.dispatcher,
                json!({"rider_id": self.rider.id}),
            ),
            Call::Unassign => ("unassign", &self.app.dispatcher, json!({})),
            Call::Fail => (
                "fail",
                &self.app.dispatcher,
                json!({"reason": "dropped it"}),
            ),
        };
        self.app.order_call(id, path, token, body).await
    }

    /// Each call is refused with 409 `invalid_transition`; GET before and after agree.
    async fn refused(&self, id: &str, calls: &[Call]) {
        for &call in calls {
            let before = self.app.order_state(id).await;
            let r = self.call(id, call).await;
            assert!(
                r.status.as_u16() == 409 && r.code() == "invalid_transition",
                "{call:?} on a {} order: expected 409 invalid_transition, got {} {}",
                before["status"],
                r.status,
                r.text
            );
            let after = self.app.order_state(id).await;
            assert_eq!(
                strip_eta(&before),
                strip_eta(&after),
                "{call:?} changed a {} order",
                before["status"]
            );
        }
    }

    /// Every call but `allowed` is refused.
    async fn refused_except(&self, id: &str, allowed: &[Call]) {
        let calls: Vec<Call> = ALL.into_iter().filter(|c| !allowed.contains(c)).collect();
        self.refused(id, &calls).await;
    }

    async fn ok(&self, id: &str, call: Call, status: &str) -> Value {
        let o = self.call(id, call).await.expect(200);
        assert_eq!(o["status"], status, "{call:?}");
        o
    }
}

#[actix_web::test]
async fn illegal_transitions_are_refused_and_change_nothing() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    // Online and connected but without a position: never offered anything, assignable.
    let mut rider = app.rider_connected().await;
    rider.online().await;
    let mut w = World { app, c, m, rider };
    use Call::*;

    let id = w.app.placed_order(&w.c, &w.m).await;
    w.refused(&id, &[Accept, Reject, Ready, Assign, Unassign, Fail])
        .await;
    // Paid with another payment_ref than `Pay` sends: a repeat of the same one is a no-op.
    w.app.pay(&w.c, &id).await;
    w.refused(&id, &[Pay, Ready, Assign, Unassign, Fail]).await;
    w.ok(&id, Accept, "accepted").await;
    w.refused(
        &id,
        &[Pay, Accept, Reject, CancelByCustomer, Unassign, Fail],
    )
    .await;
    w.ok(&id, Assign, "assigned").await;
    w.refused(&id, &[Pay, Accept, Reject, CancelByCustomer, Fail])
        .await;

    // The rider reports out of order over its socket: refused, nothing changes.
    w.rider.ws.recv_type("assigned", T).await;
    let before = w.app.order_state(&id).await;
    w.rider.report("delivered", &id).await;
    w.rider.expect_error("invalid_transition").await;
    assert_eq!(strip_eta(&before), strip_eta(&w.app.order_state(&id).await));

    w.rider.report("picked_up", &id).await;
    let up = w.rider.ws.recv_type("order_updated", T).await;
    assert_eq!(up["order"]["status"], "picked_up");
    assert_eq!(
        up["order"]["ready"], true,
        "a pickup without `ready` sets it"
    );
    w.refused_except(&id, &[Fail]).await;
    w.rider.report("picked_up", &id).await;
    w.rider.expect_error("invalid_transition").await;
    w.rider.report("delivered", &id).await;
    assert_eq!(
        w.rider.ws.recv_type("order_updated", T).await["order"]["status"],
        "delivered"
    );
    w.refused(&id, &ALL).await;

    // Cancelled by the customer before payment.
    let id2 = w.app.placed_order(&w.c, &w.m).await;
    w.ok(&id2, CancelByCustomer, "cancelled").await;
    w.refused(&id2, &ALL).await;

    // Rejected by the merchant.
    let id3 = w.app.placed_order(&w.c, &w.m).await;
    w.ok(&id3, Pay, "paid").await;
    w.ok(&id3, Reject, "cancelled").await;
    w.refused(&id3, &ALL).await;

    // Failed by the dispatcher after pickup.
    let id4 = w.app.accepted_order(&w.c, &w.m).await;
    w.ok(&id4, Assign, "assigned").await;
    w.rider
        .ws
        .recv_until("assigned", T, |v| {
            v["type"] == "assigned" && v["order"]["order_id"] == id4.as_str()
        })
        .await;
    w.rider.report("picked_up", &id4).await;
    w.rider
        .ws
        .recv_until("picked_up", T, |v| {
            v["type"] == "order_updated" && v["order"]["status"] == "picked_up"
        })
        .await;
    let failed = w.ok(&id4, Fail, "failed").await;
    assert_eq!(failed["rider_id"], w.rider.id.as_str());
    let told = w
        .rider
        .ws
        .recv_until("order_updated failed", T, |v| {
            v["type"] == "order_updated" && v["order"]["status"] == "failed"
        })
        .await;
    assert_eq!(told["order"]["order_id"], id4.as_str());
    w.refused(&id4, &ALL).await;

    // Dispatcher cancel while assigned is allowed; afterwards everything is refused.
    let id5 = w.app.accepted_order(&w.c, &w.m).await;
    w.ok(&id5, Assign, "assigned").await;
    w.ok(&id5, CancelByDispatcher, "cancelled").await;
    let told = w.rider.ws.recv_type("order_cancelled", T).await;
    assert_eq!(told["order_id"], id5.as_str());
    w.refused(&id5, &ALL).await;

    let final_ = w.app.order_state(&id).await;
    assert_eq!(final_["status"], "delivered");
}

/// A pay repeated with the order's own `payment_ref` (its first answer was lost) answers
/// 200 with the order as it is and changes nothing; another payment is still refused.
#[actix_web::test]
async fn paying_again_with_the_same_payment_is_answered_not_refused() {
    let (app, c, m) = spawn_shop(|_| {}).await;
    let id = app.accepted_order(&c, &m).await;
    let before = app.order_state(&id).await;
    let again = app
        .order_call(&id, "pay", &c.token, json!({"payment_ref": "pay_123"}))
        .await
        .expect(200);
    assert_eq!(again["status"], "accepted");
    assert_eq!(again["version"], before["version"]);
    app.order_call(&id, "pay", &c.token, json!({"payment_ref": "pay_999"}))
        .await
        .expect_error(409, "invalid_transition");
    assert_eq!(app.order_state(&id).await["version"], before["version"]);
}
