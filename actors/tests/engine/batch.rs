//! `dispatch.policy = "batch"`: the planner offers an order when its rider should leave for
//! the food, to the rider a round finds best, and every v1 rule still holds.

use crate::support::*;
use dispatch_actors::config::Policy;

fn batch() -> EngineConfig {
    let mut c = cfg();
    c.dispatch.policy = Policy::Batch;
    c.dispatch.round_s = 30.0;
    c
}

/// A paid order the merchant accepted with `prep_s` of cooking ahead.
async fn cooking_order(engine: &Engine, prep_s: u64) -> Order {
    let o = paid_order(engine).await;
    engine
        .accept_order(&o.order_id, Some(prep_s))
        .await
        .unwrap()
}

/// Advances one second at a time until `rider` holds an offer; returns the seconds waited.
async fn seconds_until_offered(
    rider: &mut TestRider,
    limit_s: u32,
    fresh: &[&TestRider],
) -> Option<u32> {
    for s in 0..=limit_s {
        if !offers(&rider.take()).is_empty() {
            return Some(s);
        }
        advance_fresh(1.0, fresh).await;
        rider.send_fix();
    }
    None
}

#[actix_rt::test]
async fn an_order_is_offered_when_its_rider_should_leave_not_at_once() {
    let engine = start(batch());
    // 1,000 m from the kitchen at 5 m/s: 200 s away; the food is ready in 600 s.
    let mut rider = TestRider::online_at(&engine, "R", north(1000.0)).await;
    let o = cooking_order(&engine, 600).await;
    let waited = seconds_until_offered(&mut rider, 420, &[]).await;
    let waited = waited.expect("offered by the time the rider must leave");
    // The planner counts half the pickup service time (2 min) before the food is ready,
    // so it commits a little before 400 s; far later than at once.
    assert!(
        (200..=400).contains(&waited),
        "not committed early, not later than ready minus travel: {waited} s"
    );
    let trace = engine.trace(&o.order_id).await.unwrap();
    let planned = trace
        .iter()
        .find(|t| t.event.starts_with("planning round"))
        .expect("the round is in the trace");
    let chosen = &planned.candidates[0];
    assert_eq!(chosen.rider_id, rider.id);
    assert_eq!(chosen.decision, "planned");
    assert!(chosen.cost_s.is_some_and(|c| c > 0.0), "{chosen:?}");
}

#[actix_rt::test]
async fn food_already_ready_is_offered_at_once() {
    let engine = start(batch());
    let mut rider = TestRider::online_at(&engine, "R", north(500.0)).await;
    let _o = cooking_order(&engine, 0).await;
    let waited = seconds_until_offered(&mut rider, 5, &[]).await;
    assert!(waited.is_some_and(|s| s <= 1), "{waited:?}");
}

#[actix_rt::test]
async fn a_rider_whose_shift_ends_before_the_pickup_is_not_planned_for_it() {
    shift_ends_before_the_pickup(Policy::Batch).await;
}

#[actix_rt::test]
async fn under_nearest_a_rider_whose_shift_ends_before_the_pickup_is_not_offered_it() {
    shift_ends_before_the_pickup(Policy::Nearest).await;
}

async fn shift_ends_before_the_pickup(policy: Policy) {
    {
        let engine = start_with(|c| c.dispatch.policy = policy);
        // The nearer rider's shift ends in 60 s; the food is ready in 300 s.
        let mut leaving = TestRider::online_at(&engine, "Leaving", north(300.0)).await;
        leaving.cmd(RiderCommand::Shift {
            end_ms: Some(engine.now_ms() + 60_000),
        });
        let mut staying = TestRider::online_at(&engine, "Staying", north(900.0)).await;
        staying.cmd(RiderCommand::Shift {
            end_ms: Some(engine.now_ms() + 3_600_000),
        });
        settle().await;
        let o = cooking_order(&engine, 300).await;
        assert!(
            seconds_until_offered(&mut staying, 400, &[&leaving])
                .await
                .is_some(),
            "{policy:?}: the rider still on shift gets it"
        );
        assert!(
            leaving.offers_for(&o.order_id).is_empty(),
            "{policy:?}: never offered past its shift"
        );
    }
}

#[actix_rt::test]
async fn the_round_offers_the_cheapest_rider_and_the_trace_shows_every_price() {
    let engine = start(batch());
    let mut near = TestRider::online_at(&engine, "Near", north(300.0)).await;
    let mut far = TestRider::online_at(&engine, "Far", north(1500.0)).await;
    let o = cooking_order(&engine, 0).await;
    advance_fresh(2.0, &[&near, &far]).await;
    let offered_near = !near.offers_for(&o.order_id).is_empty();
    let offered_far = !far.offers_for(&o.order_id).is_empty();
    assert!(offered_near ^ offered_far, "exactly one offer");
    let trace = engine.trace(&o.order_id).await.unwrap();
    let round = trace
        .iter()
        .find(|t| t.event.starts_with("planning round"))
        .expect("the round is in the trace");
    assert_eq!(round.candidates.len(), 2, "{round:?}");
    let planned = round
        .candidates
        .iter()
        .find(|c| c.decision == "planned")
        .unwrap();
    let other = round
        .candidates
        .iter()
        .find(|c| c.decision != "planned")
        .unwrap();
    assert!(planned.cost_s <= other.cost_s, "{round:?}");
    // Food ready now: the nearer rider brings it sooner, and that is what it is priced on.
    assert_eq!(planned.rider_id, near.id);
}

#[actix_rt::test]
async fn a_decliner_is_never_planned_for_that_order_again() {
    let engine = start(batch());
    let mut first = TestRider::online_at(&engine, "First", north(300.0)).await;
    let mut second = TestRider::online_at(&engine, "Second", north(900.0)).await;
    let o = cooking_order(&engine, 0).await;
    assert!(seconds_until_offered(&mut first, 5, &[&second])
        .await
        .is_some());
    let offer = first
        .offers_for(&o.order_id)
        .pop()
        .expect("an offer to the first rider");
    first.cmd(RiderCommand::Decline {
        offer_id: offer.offer_id,
    });
    settle().await;
    assert!(seconds_until_offered(&mut second, 40, &[&first])
        .await
        .is_some());
    advance_fresh(120.0, &[&first, &second]).await;
    assert_eq!(
        first.offers_for(&o.order_id).len(),
        1,
        "declined: never again"
    );
}

#[actix_rt::test]
async fn a_rider_who_let_the_offer_expire_is_passed_over_then_offered_again_when_alone() {
    let engine = start(batch());
    let mut first = TestRider::online_at(&engine, "First", north(300.0)).await;
    let mut second = TestRider::online_at(&engine, "Second", north(900.0)).await;
    let o = cooking_order(&engine, 0).await;
    assert!(seconds_until_offered(&mut first, 5, &[&second])
        .await
        .is_some());
    // First lets it expire (offer_ttl_s = 5): the next round plans the other rider.
    assert!(seconds_until_offered(&mut second, 40, &[&first])
        .await
        .is_some());
    assert_eq!(first.offers_for(&o.order_id).len(), 1, "passed over");
    // Second lets it expire too: nobody new is left, so the first gets it again.
    assert!(
        seconds_until_offered(&mut first, 40, &[&second])
            .await
            .is_some(),
        "offered again once nobody else is in reach"
    );
    let trace = engine.trace(&o.order_id).await.unwrap();
    assert!(
        trace
            .iter()
            .any(|t| t.event.starts_with("nobody new in range")),
        "{trace:?}"
    );
}

#[actix_rt::test]
async fn nobody_in_reach_escalates_and_a_dispatcher_assignment_takes_the_order_out_of_planning() {
    let engine = start_with(|c| {
        c.dispatch.policy = Policy::Batch;
        c.timers.dispatch_remind_s = 60.0;
    });
    let o = cooking_order(&engine, 0).await;
    advance(61.0).await;
    let open = the_escalation(&engine, EscalationKind::NoRider).await;
    assert!(open.is_open());
    // Out of every search radius: only a dispatcher can give it to this rider.
    let mut far = TestRider::online_at(&engine, "Far", centre().destination(0.0, 60_000.0)).await;
    let by_hand = engine.assign(&o.order_id, &far.id).await.unwrap();
    assert_eq!(by_hand.status, OrderStatus::Assigned);
    settle().await;
    assert!(!the_escalation(&engine, EscalationKind::NoRider)
        .await
        .is_open());
    let mut near = TestRider::online_at(&engine, "Near", north(200.0)).await;
    advance_fresh(90.0, &[&near, &far]).await;
    assert!(near.offers_for(&o.order_id).is_empty(), "no longer planned");
    assert_eq!(
        assigned(&far.take()).len(),
        1,
        "the dispatcher's rider was told"
    );
}

#[actix_rt::test]
async fn without_late_commitment_an_order_takes_a_rider_at_the_first_round() {
    let engine = start_with(|c| {
        c.dispatch.policy = Policy::Batch;
        c.dispatch.round_s = 30.0;
        c.dispatch.late_commitment = false;
    });
    let mut rider = TestRider::online_at(&engine, "R", north(1000.0)).await;
    let _o = cooking_order(&engine, 600).await;
    let waited = seconds_until_offered(&mut rider, 60, &[]).await;
    assert!(waited.is_some_and(|s| s <= 31), "{waited:?}");
}
