//! One simulated MDRP courier, speaking to the engine exactly as a rider socket would
//! (an outbox attached to its rider actor, commands through `Engine::rider_command`).

use super::driver::Sim;
use super::{to_geo, travel_min, Assignment, Courier, DeliveredOrder, Move, Restaurant};
use dispatch_actors::domain::gps::RawFix;
use dispatch_actors::domain::offers::Offer;
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

/// One simulated courier: online at `on_time`, accepts every offer (one order or a bundle)
/// it can pick up before `off_time` (declines the rest), works each job on whole minutes,
/// may accept its next job while finishing one (a next-job offer), offline once idle after
/// `off_time`.
struct CourierSim {
    sim: Rc<Sim>,
    c: Courier,
    rider: RiderId,
    outbox: Outbox<RiderNotice>,
    pos: (f64, f64),
    /// Where the last move ended: `0`, a restaurant id or an order id.
    last_place: String,
    next_fix: Instant,
    /// While delivering: the minute and place this courier will be free (all drop-offs
    /// done), so a next-job offer can be judged.
    free_at: Option<(u64, (f64, f64))>,
    /// Jobs assigned while another was in hand (next-job offers), each with the minute it
    /// was assigned, in the order they came.
    queued: Vec<(Vec<OrderId>, u64)>,
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

    /// The first whole minute at or after now. The engine answers a command a few
    /// simulated milliseconds after it is sent; an answer that late still counts as the
    /// minute it was asked in (so an offer judged at minute m is worked from minute m).
    fn minute_now(&self) -> u64 {
        (self.sim.now_min() - 0.001).ceil().max(0.0) as u64
    }

    fn place_update(&mut self, seg: Option<Segment>) {
        if let Some((a, b, t_a, t_b)) = seg {
            let f = ((self.sim.now_min() - t_a) / (t_b - t_a).max(1e-9)).clamp(0.0, 1.0);
            self.pos = (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f);
        }
    }

    /// The minute this courier could pick up every order of `offer` if it took it now:
    /// from where and when it is next free, to the restaurant, no earlier than the food.
    /// `None` if an order is unknown or the orders are not of one restaurant.
    fn pickup_estimate(&self, offer: &Offer) -> Option<u64> {
        let p = &self.sim.inst.params;
        let (start, from) = self.free_at.unwrap_or((self.minute_now(), self.pos));
        let start = start.max(self.minute_now());
        let mut ready = 0;
        let mut restaurant = None;
        for id in offer.order_ids() {
            let i = self.sim.orders.borrow().get(&id).copied()?;
            let o = &self.sim.inst.orders[i];
            let r = self.sim.inst.restaurant(&o.restaurant)?;
            if restaurant.is_some_and(|x: &Restaurant| x.id != r.id) {
                return None;
            }
            restaurant = Some(r);
            ready = ready.max(o.ready);
        }
        let r = restaurant?;
        let arrive = start + travel_min(from, (r.x, r.y), p.meters_per_minute);
        Some((arrive + p.pickup_service_min.div_ceil(2)).max(ready))
    }

    /// Accepts an offer this courier can pick up before its shift ends; declines others.
    fn answer_offer(&mut self, offer: Offer) {
        let fits = self
            .pickup_estimate(&offer)
            .is_some_and(|t| t <= self.c.off);
        if fits {
            self.send(RiderCommand::Accept {
                offer_id: offer.offer_id,
            });
        } else {
            self.sim.declined.set(self.sim.declined.get() + 1);
            self.send(RiderCommand::Decline {
                offer_id: offer.offer_id,
            });
        }
    }

    /// The `assigned` frames already waiting after `first` (a bundle's arrive together).
    fn gather_assigned(&mut self, first: OrderId) -> Vec<OrderId> {
        let mut job = vec![first];
        for n in self.outbox.drain() {
            match n {
                RiderNotice::Assigned { order } => job.push(order.order_id),
                RiderNotice::Offer(o) => self.answer_offer(o),
                _ => {}
            }
        }
        job
    }

    /// Lets simulated time pass until `minute`, moving along `seg` if given, sending a fix
    /// at least every 10 s, answering offers and queueing next jobs. Orders of `watch`
    /// taken away meanwhile are removed from it.
    async fn pass_until(&mut self, minute: f64, seg: Option<Segment>, watch: &mut Vec<OrderId>) {
        let deadline = self.sim.at(minute);
        loop {
            if Instant::now() >= deadline {
                break;
            }
            let wake = self.next_fix.min(deadline);
            tokio::select! {
                n = self.outbox.recv() => match n {
                    Some(RiderNotice::Offer(o)) => self.answer_offer(o),
                    Some(RiderNotice::Assigned { order }) if !watch.contains(&order.order_id) => {
                        let job = self.gather_assigned(order.order_id);
                        let at = self.minute_now();
                        self.queued.push((job, at));
                    }
                    Some(RiderNotice::OrderCancelled { order_id })
                    | Some(RiderNotice::Unassigned { order_id, .. }) => {
                        watch.retain(|o| o != &order_id);
                        for (job, _) in &mut self.queued {
                            job.retain(|o| o != &order_id);
                        }
                    }
                    Some(_) => {}
                    None => {
                        watch.clear();
                        return;
                    }
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
    }

    /// Moves to `to` (named `place`), departing at `dep`; returns the arrival minute.
    async fn travel(
        &mut self,
        dep: u64,
        to: (f64, f64),
        place: &str,
        watch: &mut Vec<OrderId>,
    ) -> u64 {
        let p = &self.sim.inst.params;
        let t = travel_min(self.pos, to, p.meters_per_minute);
        self.log.moves.push(Move {
            courier: self.c.id.clone(),
            departure: dep,
            origin: std::mem::replace(&mut self.last_place, place.to_string()),
            destination: place.to_string(),
        });
        let seg = (self.pos, to, dep as f64, (dep + t) as f64);
        self.pass_until((dep + t) as f64, Some(seg), watch).await;
        self.pos = to;
        dep + t
    }

    /// Works one job (one order or a bundle of one restaurant, in drop-off sequence): to
    /// the restaurant, pickup once every order is ready, each diner in turn.
    async fn work(&mut self, job: Vec<OrderId>, assigned: u64) {
        let inst = self.sim.inst.clone();
        let p = &inst.params;
        let idx: Vec<usize> = job
            .iter()
            .filter_map(|id| self.sim.orders.borrow().get(id).copied())
            .collect();
        let Some(r) = idx
            .first()
            .and_then(|&i| inst.restaurant(&inst.orders[i].restaurant))
        else {
            return;
        };
        let mut watch = job.clone();
        let assigned = assigned.max(self.minute_now());
        // To the restaurant (if not already there).
        let mut arrive = assigned;
        if self.last_place != r.id || self.pos != (r.x, r.y) {
            self.pass_until(assigned as f64, None, &mut watch).await;
            arrive = self.travel(assigned, (r.x, r.y), &r.id, &mut watch).await;
        }
        let ready = idx.iter().map(|&i| inst.orders[i].ready).max().unwrap_or(0);
        let pickup = (arrive + p.pickup_service_min.div_ceil(2))
            .max(ready)
            .max(assigned);
        self.pass_until(pickup as f64, None, &mut watch).await;
        let legs: Vec<usize> = idx
            .into_iter()
            .filter(|&i| {
                watch
                    .iter()
                    .any(|id| self.sim.orders.borrow().get(id) == Some(&i))
            })
            .collect();
        if legs.is_empty() {
            return;
        }
        for id in &watch {
            self.send(RiderCommand::PickedUp {
                order_id: id.clone(),
            });
        }
        // Where and when the last drop-off will be done, for next-job offers.
        let dep = pickup + p.pickup_service_min.div_ceil(2);
        let mut t = dep;
        let mut at = (r.x, r.y);
        for &i in &legs {
            let o = &inst.orders[i];
            t += travel_min(at, (o.x, o.y), p.meters_per_minute) + p.dropoff_service_min;
            at = (o.x, o.y);
        }
        self.free_at = Some((t, at));
        self.pass_until(dep as f64, None, &mut watch).await;
        let mut dep = dep;
        let ids: Vec<(usize, OrderId)> = legs
            .iter()
            .map(|&i| {
                let id = watch
                    .iter()
                    .find(|id| self.sim.orders.borrow().get(*id) == Some(&i))
                    .cloned()
                    .expect("a leg is watched");
                (i, id)
            })
            .collect();
        let mut names = Vec::with_capacity(ids.len());
        let mut delivered = Vec::new();
        for (i, order_id) in ids {
            let o = &inst.orders[i];
            let arrive = self.travel(dep, (o.x, o.y), &o.id, &mut watch).await;
            let dropoff = arrive + p.dropoff_service_min.div_ceil(2);
            // The handover is at `dropoff`; the courier is free for the next leg (or new
            // work) only after the rest of the drop-off service, so the engine hears
            // `delivered` then (an idle rider would be offered work it could not start).
            let free = dropoff + p.dropoff_service_min.div_ceil(2);
            self.pass_until(free as f64, None, &mut watch).await;
            self.send(RiderCommand::Delivered {
                order_id: order_id.clone(),
            });
            names.push(o.id.clone());
            delivered.push(DeliveredOrder {
                order: o.id.clone(),
                placement: o.placement,
                ready: o.ready,
                pickup,
                dropoff,
                courier: self.c.id.clone(),
            });
            dep = free;
        }
        self.free_at = None;
        self.log.assignments.push(Assignment {
            assignment_time: assigned,
            pickup_time: pickup,
            courier: self.c.id.clone(),
            orders: names,
        });
        self.log.delivered.extend(delivered);
    }

    /// Works `job`, then every job queued meanwhile.
    async fn work_all(&mut self, job: Vec<OrderId>, assigned: u64) {
        self.work(job, assigned).await;
        while !self.queued.is_empty() {
            let (next, at) = self.queued.remove(0);
            if !next.is_empty() {
                self.work(next, at).await;
            }
        }
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
        free_at: None,
        queued: Vec::new(),
        log: CourierLog::default(),
    };
    let off_at = sim.at(me.c.off as f64);
    // Shifts are known in advance (the data README): the courier says when its ends.
    let shift_end_ms =
        sim.engine.now_ms() + off_at.saturating_duration_since(Instant::now()).as_millis() as u64;
    me.send(RiderCommand::Shift {
        end_ms: Some(shift_end_ms),
    });
    me.send(RiderCommand::SetOnline(true));
    me.send_fix();
    loop {
        if Instant::now() >= off_at {
            break;
        }
        let wake = me.next_fix.min(off_at);
        tokio::select! {
            n = me.outbox.recv() => match n {
                Some(RiderNotice::Offer(offer)) => me.answer_offer(offer),
                Some(RiderNotice::Assigned { order }) => {
                    let job = me.gather_assigned(order.order_id);
                    let at = me.minute_now();
                    me.work_all(job, at).await;
                }
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
