//! One simulated MDRP courier, speaking to the engine exactly as a rider socket would
//! (an outbox attached to its rider actor, commands through `Engine::rider_command`).

use super::driver::Sim;
use super::{to_geo, travel_min, Assignment, Courier, DeliveredOrder, Move};
use dispatch_actors::domain::gps::RawFix;
use dispatch_actors::domain::{OrderId, RiderId};
use dispatch_actors::outbox::Outbox;
use dispatch_actors::protocol::{RiderCommand, RiderNotice};
use std::rc::Rc;
use std::time::Duration;
use tokio::time::Instant;

/// A simulated courier sends a fix at least this often (simulated seconds).
const FIX_EVERY_S: f64 = 10.0;

#[derive(Default)]
pub(super) struct CourierLog {
    pub(super) moves: Vec<Move>,
    pub(super) assignments: Vec<Assignment>,
    pub(super) delivered: Vec<DeliveredOrder>,
}

/// One simulated courier: online at `on_time`, accepts every offer it can pick up before
/// `off_time` (declines the rest), works each order on whole minutes, offline once idle
/// after `off_time`.
struct CourierSim {
    sim: Rc<Sim>,
    c: Courier,
    rider: RiderId,
    outbox: Outbox<RiderNotice>,
    pos: (f64, f64),
    /// Where the last move ended: `0`, a restaurant id or an order id.
    last_place: String,
    next_fix: Instant,
    log: CourierLog,
}

/// A straight segment being travelled: from, to, start and end minute.
type Segment = ((f64, f64), (f64, f64), f64, f64);

impl CourierSim {
    fn send(&self, cmd: RiderCommand) {
        let _ = self.sim.engine.rider_command(&self.rider, cmd);
    }

    fn send_fix(&mut self) {
        let p = to_geo(self.pos.0, self.pos.1);
        self.send(RiderCommand::Location(RawFix {
            lat: Some(p.lat()),
            lon: Some(p.lon()),
            ts_ms: Some(self.sim.engine.now_ms() as f64),
            ..Default::default()
        }));
        self.sim.fixes.set(self.sim.fixes.get() + 1);
        self.next_fix = Instant::now() + Duration::from_secs_f64(FIX_EVERY_S);
    }

    fn place_update(&mut self, seg: Option<Segment>) {
        if let Some((a, b, t_a, t_b)) = seg {
            let f = ((self.sim.now_min() - t_a) / (t_b - t_a).max(1e-9)).clamp(0.0, 1.0);
            self.pos = (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f);
        }
    }

    /// Whole minutes after `now` at which pickup could happen if this courier took an
    /// order of `restaurant` ready at `ready` now.
    fn pickup_estimate(&self, restaurant: (f64, f64), ready: u64) -> u64 {
        let p = &self.sim.inst.params;
        let dep = self.sim.now_min().ceil() as u64;
        let arrive = dep + travel_min(self.pos, restaurant, p.meters_per_minute);
        (arrive + p.pickup_service_min.div_ceil(2)).max(ready)
    }

    /// Lets simulated time pass until `minute`, moving along `seg` if given, sending a fix
    /// at least every 10 s. Returns true if the order `watch` was taken away meanwhile.
    async fn pass_until(&mut self, minute: f64, seg: Option<Segment>, watch: &OrderId) -> bool {
        let deadline = self.sim.at(minute);
        let mut lost = false;
        loop {
            if Instant::now() >= deadline {
                break;
            }
            let wake = self.next_fix.min(deadline);
            tokio::select! {
                n = self.outbox.recv() => match n {
                    Some(RiderNotice::Offer(o)) => {
                        self.sim.declined.set(self.sim.declined.get() + 1);
                        self.send(RiderCommand::Decline { offer_id: o.offer_id });
                    }
                    Some(RiderNotice::OrderCancelled { order_id })
                    | Some(RiderNotice::Unassigned { order_id, .. }) if &order_id == watch => {
                        lost = true;
                    }
                    Some(_) => {}
                    None => return true,
                },
                _ = tokio::time::sleep_until(wake) => {
                    self.place_update(seg);
                    if Instant::now() >= self.next_fix {
                        self.send_fix();
                    }
                }
            }
        }
        self.place_update(seg);
        self.send_fix();
        lost
    }

    /// Works one assigned order: to the restaurant, pickup when ready, to the diner.
    async fn work(&mut self, order_id: OrderId) {
        let Some(idx) = self.sim.orders.borrow().get(&order_id).copied() else {
            return;
        };
        let inst = self.sim.inst.clone();
        let o = &inst.orders[idx];
        let Some(r) = inst.restaurant(&o.restaurant) else {
            return;
        };
        let p = &inst.params;
        let assigned = self.sim.now_min().ceil() as u64;
        // To the restaurant (if not already there).
        let mut arrive = assigned;
        if self.last_place != r.id || self.pos != (r.x, r.y) {
            let dep = assigned;
            let lost = self.pass_until(dep as f64, None, &order_id).await;
            let t = travel_min(self.pos, (r.x, r.y), p.meters_per_minute);
            arrive = dep + t;
            self.log.moves.push(Move {
                courier: self.c.id.clone(),
                departure: dep,
                origin: std::mem::replace(&mut self.last_place, r.id.clone()),
                destination: r.id.clone(),
            });
            let seg = (self.pos, (r.x, r.y), dep as f64, arrive as f64);
            let lost = self.pass_until(arrive as f64, Some(seg), &order_id).await || lost;
            self.pos = (r.x, r.y);
            if lost {
                return;
            }
        }
        let pickup = (arrive + p.pickup_service_min.div_ceil(2))
            .max(o.ready)
            .max(assigned);
        if self.pass_until(pickup as f64, None, &order_id).await {
            return;
        }
        self.send(RiderCommand::PickedUp {
            order_id: order_id.clone(),
        });
        // To the diner.
        let dep = pickup + p.pickup_service_min.div_ceil(2);
        self.pass_until(dep as f64, None, &order_id).await;
        let t = travel_min(self.pos, (o.x, o.y), p.meters_per_minute);
        self.log.moves.push(Move {
            courier: self.c.id.clone(),
            departure: dep,
            origin: std::mem::replace(&mut self.last_place, o.id.clone()),
            destination: o.id.clone(),
        });
        let seg = (self.pos, (o.x, o.y), dep as f64, (dep + t) as f64);
        self.pass_until((dep + t) as f64, Some(seg), &order_id)
            .await;
        self.pos = (o.x, o.y);
        let dropoff = dep + t + p.dropoff_service_min.div_ceil(2);
        // The handover is at `dropoff`; the courier is free for new work only after the
        // rest of the drop-off service, so the engine hears `delivered` then (an idle
        // rider would be offered work it could not start).
        let free = dropoff + p.dropoff_service_min.div_ceil(2);
        self.pass_until(free as f64, None, &order_id).await;
        self.send(RiderCommand::Delivered {
            order_id: order_id.clone(),
        });
        self.log.assignments.push(Assignment {
            assignment_time: assigned,
            pickup_time: pickup,
            courier: self.c.id.clone(),
            orders: vec![o.id.clone()],
        });
        self.log.delivered.push(DeliveredOrder {
            order: o.id.clone(),
            placement: o.placement,
            ready: o.ready,
            pickup,
            dropoff,
            courier: self.c.id.clone(),
        });
    }
}

pub(super) async fn courier_loop(
    sim: Rc<Sim>,
    index: usize,
    rider: RiderId,
    outbox: Outbox<RiderNotice>,
) -> CourierLog {
    let c = sim.inst.couriers[index].clone();
    tokio::time::sleep_until(sim.at(c.on as f64)).await;
    let mut me = CourierSim {
        pos: (c.x, c.y),
        sim: sim.clone(),
        c,
        rider,
        outbox,
        last_place: "0".into(),
        next_fix: Instant::now(),
        log: CourierLog::default(),
    };
    me.send(RiderCommand::SetOnline(true));
    me.send_fix();
    let off_at = sim.at(me.c.off as f64);
    loop {
        if Instant::now() >= off_at {
            break;
        }
        let wake = me.next_fix.min(off_at);
        tokio::select! {
            n = me.outbox.recv() => match n {
                Some(RiderNotice::Offer(offer)) => {
                    let fits = sim.orders.borrow().get(&offer.order_id).copied().and_then(|i| {
                        let o = &sim.inst.orders[i];
                        let r = sim.inst.restaurant(&o.restaurant)?;
                        Some(me.pickup_estimate((r.x, r.y), o.ready) <= me.c.off)
                    });
                    if fits == Some(true) {
                        me.send(RiderCommand::Accept { offer_id: offer.offer_id });
                    } else {
                        sim.declined.set(sim.declined.get() + 1);
                        me.send(RiderCommand::Decline { offer_id: offer.offer_id });
                    }
                }
                Some(RiderNotice::Assigned { order }) => me.work(order.order_id).await,
                Some(_) => {}
                None => break,
            },
            _ = tokio::time::sleep_until(wake) => {
                if Instant::now() >= me.next_fix {
                    me.send_fix();
                }
            }
        }
    }
    me.send(RiderCommand::SetOnline(false));
    me.log
}
