//! The replay's driver: sets the city up on a fresh engine (memory store, engine clock at
//! instance minute 0), places each order at its placement time, collects what the couriers
//! did into a solution.

use super::courier::courier_loop;
use super::{engine_config, metrics, to_geo, Instance, ReplayOptions, ReplayOutcome, Solution};
use dispatch_actors::domain::merchant::MAX_PREP_TIME_S;
use dispatch_actors::domain::order::OrderCommand;
use dispatch_actors::domain::{CustomerId, ItemId, MerchantId, OrderId};
use dispatch_actors::outbox::Outbox;
use dispatch_actors::store::MemoryStore;
use dispatch_actors::{Clock, Engine};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub(super) struct Sim {
    pub(super) engine: Engine,
    pub(super) inst: Rc<Instance>,
    /// Engine order id → index into `inst.orders`.
    pub(super) orders: RefCell<HashMap<OrderId, usize>>,
    /// tokio instant of instance minute 0.
    t0: Instant,
    pub(super) fixes: Cell<u64>,
    pub(super) declined: Cell<u64>,
}

impl Sim {
    pub(super) fn at(&self, minute: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(minute.max(0.0) * 60.0)
    }
    /// Instance minutes now, on the same clock as [`Sim::at`] (the engine's clock may run a
    /// few milliseconds apart: it started before the city was set up).
    pub(super) fn now_min(&self) -> f64 {
        Instant::now()
            .saturating_duration_since(self.t0)
            .as_secs_f64()
            / 60.0
    }
}

pub(super) async fn simulate(
    inst: Instance,
    opts: &ReplayOptions,
) -> Result<ReplayOutcome, String> {
    let engine = Engine::start(
        engine_config(&inst, opts),
        Arc::new(MemoryStore::new()),
        Clock::starting_at(0),
    );
    let err = |e: dispatch_actors::EngineError| e.to_string();
    let mut merchants: HashMap<String, (MerchantId, ItemId)> = HashMap::new();
    for r in &inst.restaurants {
        let m = engine
            .create_merchant(r.id.clone(), to_geo(r.x, r.y), Some(600))
            .await
            .map_err(err)?;
        let item = engine
            .add_item(&m.merchant_id, "Meal".into(), 1500)
            .await
            .map_err(err)?;
        merchants.insert(r.id.clone(), (m.merchant_id, item.item_id));
    }
    let inst = Rc::new(inst);
    let sim = Rc::new(Sim {
        engine: engine.clone(),
        inst: inst.clone(),
        orders: RefCell::new(HashMap::new()),
        t0: Instant::now(),
        fixes: Cell::new(0),
        declined: Cell::new(0),
    });
    let mut couriers = Vec::new();
    for (i, c) in inst.couriers.iter().enumerate() {
        let rider = engine.create_rider(c.id.clone()).await.map_err(err)?;
        let outbox = Outbox::new(256);
        engine
            .attach_rider(&rider.rider_id, outbox.clone())
            .await
            .map_err(err)?;
        couriers.push(actix_rt::spawn(courier_loop(
            sim.clone(),
            i,
            rider.rider_id,
            outbox,
        )));
    }
    // Orders, in placement order: created, paid and accepted at placement_time with the
    // prep time that makes ready_at = ready_time.
    let mut by_time: Vec<usize> = (0..inst.orders.len()).collect();
    by_time.sort_by_key(|&i| (inst.orders[i].placement, i));
    let customer = CustomerId::generate();
    let mut created = 0u64;
    for i in by_time {
        let o = &inst.orders[i];
        tokio::time::sleep_until(sim.at(o.placement as f64)).await;
        let (merchant, item) = &merchants[&o.restaurant];
        let order = engine
            .create_order(
                customer.clone(),
                merchant,
                vec![(item.clone(), 1)],
                to_geo(o.x, o.y),
            )
            .await
            .map_err(err)?;
        sim.orders.borrow_mut().insert(order.order_id.clone(), i);
        created += 1;
        engine
            .order_command(
                &order.order_id,
                OrderCommand::Pay {
                    payment_ref: format!("replay-{}", o.id),
                },
            )
            .await
            .map_err(err)?;
        // The engine caps prep at MAX_PREP_TIME_S (2 h; a few instance orders wait
        // longer): then its ready_at is early, but the courier still waits for ready_time.
        let prep_s = (o.ready.saturating_sub(o.placement) * 60).min(MAX_PREP_TIME_S);
        engine
            .accept_order(&order.order_id, Some(prep_s))
            .await
            .map_err(err)?;
    }
    let mut solution = Solution::default();
    for handle in couriers {
        let log = handle
            .await
            .map_err(|e| format!("a courier task failed: {e}"))?;
        solution.moves.extend(log.moves);
        solution.assignments.extend(log.assignments);
        solution.orders.extend(log.delivered);
    }
    solution
        .assignments
        .sort_by_key(|a| (a.assignment_time, a.pickup_time));
    solution.orders.sort_by_key(|o| (o.placement, o.dropoff));
    let escalations = engine
        .escalations(false)
        .await
        .map(|e| e.len())
        .unwrap_or(0);
    let done: std::collections::HashSet<&str> =
        solution.orders.iter().map(|o| o.order.as_str()).collect();
    let mut undelivered_status = BTreeMap::new();
    let ids: Vec<(OrderId, usize)> = sim
        .orders
        .borrow()
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    for (id, i) in ids {
        if !done.contains(inst.orders[i].id.as_str()) {
            let status = match engine.order(&id).await {
                Ok(o) => o.status.to_string(),
                Err(e) => e.to_string(),
            };
            *undelivered_status.entry(status).or_insert(0) += 1;
        }
    }
    let end_minute = sim.now_min();
    let metrics = metrics(&inst, &solution);
    let first_minute = inst
        .couriers
        .iter()
        .map(|c| c.on)
        .chain(inst.orders.iter().map(|o| o.placement))
        .min()
        .unwrap_or(0);
    Ok(ReplayOutcome {
        instance: (*inst).clone(),
        solution,
        metrics,
        wall: Duration::ZERO,
        end_minute,
        first_minute,
        fixes: sim.fixes.get(),
        orders_created: created,
        declined: sim.declined.get(),
        escalations,
        undelivered_status,
    })
}
