//! The offer protocol as a model check (proptest) over the real actors: random interleavings
//! of offers, accepts, declines, expiries, disconnects and reconnects, going offline,
//! releases, pickups and deliveries (riders); accept, reject and ready (merchant); cancel
//! (customer, merchant, dispatcher); assign and unassign (dispatcher) — under both
//! policies. The timers live in the actors, so the engine runs under tokio's paused clock.
//!
//! After every step, once the engine has settled, the protocol's invariants must hold:
//! - one winner: an order `assigned` or `picked_up` is held by its rider and nobody else,
//!   any other order by nobody;
//! - no rider holds two open offers (a bundle is one offer over several orders), an order
//!   with open offers is one still looking for a rider, and each open offer is the one the
//!   rider's own view shows;
//! - nothing is lost or stuck: every order can be read, every open offer and every order
//!   waiting for someone (merchant, rider, delivery) has its timer armed and not overdue.
//!
//! Cases: `PROPTEST_CASES` (default 48; docs/reliability.md gives the figure of a long run).

use crate::support::*;
use dispatch_actors::config::Policy;
use dispatch_actors::domain::ladder::Timer;
use dispatch_actors::domain::order::Actor as By;
use dispatch_actors::domain::OfferId;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

const RIDERS: usize = 3;
/// Orders 0 and 1 start accepted by the merchant (dispatch runs); order 2 starts paid.
const ORDERS: usize = 3;

#[derive(Debug, Clone)]
enum Step {
    /// The rider accepts the last offer it was sent (it may be stale).
    Accept(usize),
    Decline(usize),
    /// Time passes (offer TTL is 5 s): offers expire, rounds run.
    Wait(u8),
    Disconnect(usize),
    Reconnect(usize),
    Online(usize, bool),
    Release(usize, usize),
    PickUp(usize, usize),
    Deliver(usize, usize),
    MerchantAccept(usize),
    MerchantReject(usize),
    Ready(usize),
    Cancel(By, usize),
    Assign(usize, usize),
    Unassign(usize),
}

fn step() -> impl Strategy<Value = Step> {
    let r = || 0..RIDERS;
    let o = || 0..ORDERS;
    let by = prop_oneof![Just(By::Customer), Just(By::Merchant), Just(By::Dispatcher)];
    prop_oneof![
        5 => r().prop_map(Step::Accept),
        2 => r().prop_map(Step::Decline),
        3 => (1u8..8).prop_map(Step::Wait),
        1 => r().prop_map(Step::Disconnect),
        1 => r().prop_map(Step::Reconnect),
        1 => (r(), any::<bool>()).prop_map(|(r, on)| Step::Online(r, on)),
        1 => (r(), o()).prop_map(|(r, o)| Step::Release(r, o)),
        2 => (r(), o()).prop_map(|(r, o)| Step::PickUp(r, o)),
        2 => (r(), o()).prop_map(|(r, o)| Step::Deliver(r, o)),
        1 => o().prop_map(Step::MerchantAccept),
        1 => o().prop_map(Step::MerchantReject),
        1 => o().prop_map(Step::Ready),
        1 => (by, o()).prop_map(|(b, o)| Step::Cancel(b, o)),
        1 => (o(), r()).prop_map(|(o, r)| Step::Assign(o, r)),
        1 => o().prop_map(Step::Unassign),
    ]
}

struct World {
    engine: Engine,
    riders: Vec<TestRider>,
    connected: Vec<bool>,
    orders: Vec<OrderId>,
}

impl World {
    async fn start(policy: Policy) -> World {
        let engine = start_with(|c| {
            c.dispatch.policy = policy;
            c.dispatch.round_s = 5.0;
            c.dispatch.offer_fanout = 2;
            c.dispatch.max_bundle = 2;
            c.timers.dispatch_remind_s = 20.0;
        });
        let mut riders = Vec::new();
        for i in 0..RIDERS {
            let at = north(300.0 + 400.0 * i as f64);
            riders.push(TestRider::online_at(&engine, &format!("R{i}"), at).await);
        }
        let mut orders = Vec::new();
        for i in 0..ORDERS {
            let o = if i < 2 {
                accepted_order(&engine).await
            } else {
                paid_order(&engine).await
            };
            orders.push(o.order_id);
        }
        World {
            engine,
            riders,
            connected: vec![true; RIDERS],
            orders,
        }
    }

    async fn apply(&mut self, s: Step) {
        let e = self.engine.clone();
        match s {
            Step::Accept(r) => {
                self.riders[r].take();
                if let Some(offer) = offers(&self.riders[r].log).pop() {
                    self.riders[r].accept(&offer);
                }
            }
            Step::Decline(r) => {
                self.riders[r].take();
                if let Some(offer) = offers(&self.riders[r].log).pop() {
                    self.riders[r].cmd(RiderCommand::Decline {
                        offer_id: offer.offer_id,
                    });
                }
            }
            Step::Wait(secs) => {
                let fresh: Vec<&TestRider> = self
                    .riders
                    .iter()
                    .zip(&self.connected)
                    .filter(|(_, c)| **c)
                    .map(|(r, _)| r)
                    .collect();
                advance_fresh(f64::from(secs), &fresh).await;
            }
            Step::Disconnect(r) => {
                if self.connected[r] {
                    self.riders[r].take();
                    e.detach_rider(&self.riders[r].id, self.riders[r].outbox.clone());
                    self.connected[r] = false;
                }
            }
            Step::Reconnect(r) => {
                self.riders[r].take();
                self.riders[r].reconnect().await;
                self.connected[r] = true;
            }
            Step::Online(r, on) => self.riders[r].cmd(RiderCommand::SetOnline(on)),
            Step::Release(r, o) => self.riders[r].cmd(RiderCommand::Release {
                order_id: self.orders[o].clone(),
            }),
            Step::PickUp(r, o) => self.riders[r].cmd(RiderCommand::PickedUp {
                order_id: self.orders[o].clone(),
            }),
            Step::Deliver(r, o) => self.riders[r].cmd(RiderCommand::Delivered {
                order_id: self.orders[o].clone(),
            }),
            Step::MerchantAccept(o) => {
                let _ = e.accept_order(&self.orders[o], Some(0)).await;
            }
            Step::MerchantReject(o) => {
                let cmd = OrderCommand::Reject {
                    reason: "closing early".into(),
                };
                let _ = e.order_command(&self.orders[o], cmd).await;
            }
            Step::Ready(o) => {
                let _ = e
                    .order_command(&self.orders[o], OrderCommand::MarkReady)
                    .await;
            }
            Step::Cancel(by, o) => {
                let cmd = OrderCommand::Cancel {
                    by,
                    reason: Some("changed my mind".into()),
                };
                let _ = e.order_command(&self.orders[o], cmd).await;
            }
            Step::Assign(o, r) => {
                let _ = e.assign(&self.orders[o], &self.riders[r].id).await;
            }
            Step::Unassign(o) => {
                let _ = e
                    .order_command(&self.orders[o], OrderCommand::Unassign)
                    .await;
            }
        }
        settle().await;
    }

    /// The invariants of the module comment, now.
    async fn check(&self) -> Result<(), String> {
        let now = self.engine.now_ms();
        let mut views = Vec::new();
        for r in &self.riders {
            views.push(r.view().await);
        }
        // rider -> the open offers the orders hold for it
        let mut open: HashMap<RiderId, HashSet<OfferId>> = HashMap::new();
        for id in &self.orders {
            let o = self
                .engine
                .order(id)
                .await
                .map_err(|e| format!("{id} is lost: {e}"))?;
            let holders: Vec<&RiderId> = views
                .iter()
                .filter(|v| v.order_ids.contains(id))
                .map(|v| &v.rider_id)
                .collect();
            held_as_its_state(id, &o, &holders)?;
            if o.status.is_final() {
                continue;
            }
            let rec = self
                .engine
                .store()
                .load_order_record(id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{id} is live but has no record"))?;
            if !rec.offers.open.is_empty() && o.status != OrderStatus::Accepted {
                return Err(format!("{id} is {:?} with open offers", o.status));
            }
            for oo in &rec.offers.open {
                if oo.offer.expires_at_ms + 1000 < now {
                    return Err(format!("{id}: offer {} is overdue", oo.offer.offer_id));
                }
                open.entry(oo.rider_id.clone())
                    .or_default()
                    .insert(oo.offer.offer_id.clone());
            }
            let wanted = match o.status {
                OrderStatus::Paid => Some(Timer::MerchantAccept),
                OrderStatus::Accepted => Some(Timer::DispatchRemind),
                OrderStatus::Assigned => Some(Timer::PickupLate),
                OrderStatus::PickedUp => Some(Timer::DeliveryTimeout),
                _ => None,
            };
            if let Some(t) = wanted {
                match rec.timers.iter().find(|r| r.timer == t) {
                    None => return Err(format!("{id} is {:?} with no {t:?} timer", o.status)),
                    Some(r) if r.due_ms + 1000 < now => {
                        return Err(format!("{id}: its {t:?} timer is overdue"))
                    }
                    Some(_) => {}
                }
            }
        }
        for v in &views {
            let held = open.remove(&v.rider_id).unwrap_or_default();
            if held.len() > 1 {
                return Err(format!("{} holds open offers {held:?}", v.rider_id));
            }
            let shown = v.offer.as_ref().map(|o| o.offer_id.clone());
            if held.iter().next() != shown.as_ref() {
                return Err(format!(
                    "{}: the orders hold {held:?} open for it, its view shows {shown:?}",
                    v.rider_id
                ));
            }
        }
        if let Some((r, _)) = open.iter().next() {
            return Err(format!("an offer is open for unknown rider {r}"));
        }
        Ok(())
    }
}

async fn run(policy: Policy, steps: Vec<Step>) -> Result<(), String> {
    let mut w = World::start(policy).await;
    w.check().await.map_err(|e| format!("at start: {e}"))?;
    for (i, s) in steps.into_iter().enumerate() {
        let what = format!("{s:?}");
        w.apply(s).await;
        w.check()
            .await
            .map_err(|e| format!("after step {i} ({what}): {e}"))?;
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn offer_protocol_invariants_hold_after_every_step(
        batch in any::<bool>(),
        steps in prop::collection::vec(step(), 1..30),
    ) {
        let policy = if batch { Policy::Batch } else { Policy::Nearest };
        let outcome = actix_rt::System::new().block_on(run(policy, steps));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}
