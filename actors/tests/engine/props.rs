//! The offer protocol under random interleavings (proptest): riders accepting, declining,
//! letting offers expire, going offline and back, releasing, picking up and delivering;
//! the dispatcher assigning, unassigning and cancelling — in any order, under both
//! policies. Afterwards: every order has at most one rider, that rider and no other holds
//! it, a rider holds no order it does not have, and every order is either final, with its
//! rider, or still being dispatched with its supervisor timer running (the dispatcher hears
//! of it).

use crate::support::*;
use dispatch_actors::config::Policy;
use dispatch_actors::domain::order::Actor as By;
use proptest::prelude::*;

const RIDERS: usize = 3;
const ORDERS: usize = 2;

#[derive(Debug, Clone)]
enum Step {
    /// The rider accepts the last offer it was sent (it may be stale).
    Accept(usize),
    Decline(usize),
    Online(usize, bool),
    Wait(u8),
    Assign(usize, usize),
    Unassign(usize),
    Cancel(usize),
    Release(usize, usize),
    PickUp(usize, usize),
    Deliver(usize, usize),
}

fn step() -> impl Strategy<Value = Step> {
    let r = 0..RIDERS;
    let o = 0..ORDERS;
    prop_oneof![
        4 => r.clone().prop_map(Step::Accept),
        2 => r.clone().prop_map(Step::Decline),
        1 => (r.clone(), any::<bool>()).prop_map(|(r, on)| Step::Online(r, on)),
        2 => (1u8..8).prop_map(Step::Wait),
        1 => (o.clone(), r.clone()).prop_map(|(o, r)| Step::Assign(o, r)),
        1 => o.clone().prop_map(Step::Unassign),
        1 => o.clone().prop_map(Step::Cancel),
        1 => (r.clone(), o.clone()).prop_map(|(r, o)| Step::Release(r, o)),
        2 => (r.clone(), o.clone()).prop_map(|(r, o)| Step::PickUp(r, o)),
        2 => (r, o).prop_map(|(r, o)| Step::Deliver(r, o)),
    ]
}

async fn run(policy: Policy, steps: Vec<Step>) -> Result<(), String> {
    let engine = start_with(|c| {
        c.dispatch.policy = policy;
        c.dispatch.round_s = 5.0;
        c.dispatch.offer_fanout = 2;
        c.timers.dispatch_remind_s = 20.0;
    });
    let mut riders = Vec::new();
    for i in 0..RIDERS {
        let at = north(300.0 + 400.0 * i as f64);
        riders.push(TestRider::online_at(&engine, &format!("R{i}"), at).await);
    }
    let mut orders = Vec::new();
    for _ in 0..ORDERS {
        orders.push(accepted_order(&engine).await.order_id);
    }
    for s in steps {
        match s {
            Step::Accept(r) => {
                let last = offers(&{
                    riders[r].take();
                    riders[r].log.clone()
                })
                .pop();
                if let Some(offer) = last {
                    riders[r].accept(&offer);
                }
            }
            Step::Decline(r) => {
                riders[r].take();
                if let Some(offer) = offers(&riders[r].log).pop() {
                    riders[r].cmd(RiderCommand::Decline {
                        offer_id: offer.offer_id,
                    });
                }
            }
            Step::Online(r, on) => riders[r].cmd(RiderCommand::SetOnline(on)),
            Step::Wait(s) => {
                let fresh: Vec<&TestRider> = riders.iter().collect();
                advance_fresh(f64::from(s), &fresh).await;
            }
            Step::Assign(o, r) => {
                let _ = engine.assign(&orders[o], &riders[r].id).await;
            }
            Step::Unassign(o) => {
                let _ = engine
                    .order_command(&orders[o], OrderCommand::Unassign)
                    .await;
            }
            Step::Cancel(o) => {
                let cmd = OrderCommand::Cancel {
                    by: By::Dispatcher,
                    reason: Some("test".into()),
                };
                let _ = engine.order_command(&orders[o], cmd).await;
            }
            Step::Release(r, o) => riders[r].cmd(RiderCommand::Release {
                order_id: orders[o].clone(),
            }),
            Step::PickUp(r, o) => riders[r].cmd(RiderCommand::PickedUp {
                order_id: orders[o].clone(),
            }),
            Step::Deliver(r, o) => riders[r].cmd(RiderCommand::Delivered {
                order_id: orders[o].clone(),
            }),
        }
        settle().await;
    }
    // Everyone back online and heard from; time for offers to expire and rounds to run.
    for r in &riders {
        r.cmd(RiderCommand::SetOnline(true));
    }
    let fresh: Vec<&TestRider> = riders.iter().collect();
    advance_fresh(30.0, &fresh).await;
    check(&engine, &riders, &orders).await
}

async fn check(engine: &Engine, riders: &[TestRider], orders: &[OrderId]) -> Result<(), String> {
    let mut views = Vec::new();
    for r in riders {
        views.push(r.view().await);
    }
    for id in orders {
        let o = order(engine, id).await;
        let holders: Vec<&RiderId> = views
            .iter()
            .filter(|v| v.order_ids.contains(id))
            .map(|v| &v.rider_id)
            .collect();
        // Still looking for a rider 30 s after the last step: its supervisor timer runs,
        // so the dispatcher has been told (dispatch_remind_s = 20).
        if o.status == OrderStatus::Accepted {
            let told = escalations_of(engine, EscalationKind::NoRider)
                .await
                .iter()
                .any(|e| e.is_open() && e.order_id.as_ref() == Some(id));
            if !told {
                return Err(format!("{id} waits for a rider with no escalation"));
            }
        }
        held_as_its_state(id, &o, &holders)?;
    }
    for v in &views {
        for held in &v.order_ids {
            if !orders.contains(held) {
                return Err(format!("{} holds unknown {held}", v.rider_id));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn one_rider_per_order_whatever_the_interleaving(
        batch in any::<bool>(),
        steps in prop::collection::vec(step(), 1..25),
    ) {
        let policy = if batch { Policy::Batch } else { Policy::Nearest };
        let outcome = actix_rt::System::new().block_on(run(policy, steps));
        prop_assert!(outcome.is_ok(), "{:?}", outcome);
    }
}
