//! The demo city: merchants, riders and a stream of orders around one centre, so a first
//! `cargo run` shows the engine at work. Simulated riders use the rider socket's own code
//! path (an outbox attached to their actor, commands through `Engine::rider_command`):
//! they move in straight lines at a realistic speed, send fixes every `fix_interval_s`,
//! sometimes decline, sometimes go silent; some merchants never answer, and one kitchen's
//! orders nobody accepts (they wait for the dispatcher). So every escalation kind shows
//! up on the dashboard within minutes.

use dispatch_actors::config::TimersConfig;
use dispatch_actors::domain::gps::RawFix;
use dispatch_actors::domain::order::OrderCommand;
use dispatch_actors::domain::{CustomerId, GeoPoint, ItemId, MerchantId, OrderId, RiderId};
use dispatch_actors::outbox::Outbox;
use dispatch_actors::protocol::{RiderCommand, RiderNotice};
use dispatch_actors::{Engine, EngineError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The `[demo]` section of the server's configuration (config.toml documents each key).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DemoSettings {
    pub enabled: bool,
    pub center_lat: f64,
    pub center_lon: f64,
    pub radius_m: f64,
    pub merchants: usize,
    pub riders: usize,
    pub orders_per_minute: f64,
    /// Fix interval of simulated riders (seconds).
    pub fix_interval_s: f64,
    pub rider_speed_mps: f64,
    pub decline_probability: f64,
    /// Chance per fix that a rider goes silent for a while.
    pub silence_probability: f64,
    /// Chance that a merchant never answers an order.
    pub merchant_ignore_probability: f64,
    /// While the demo runs, cap each supervisor timer at a demo-sized value (see
    /// [`cap_timers`]) so every escalation kind shows up within minutes.
    pub fast_timers: bool,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            center_lat: 31.2304,
            center_lon: 121.4737,
            radius_m: 4000.0,
            merchants: 25,
            riders: 60,
            orders_per_minute: 4.0,
            fix_interval_s: 10.0,
            rider_speed_mps: 8.0,
            decline_probability: 0.1,
            silence_probability: 0.006,
            merchant_ignore_probability: 0.08,
            fast_timers: true,
        }
    }
}

/// The demo's timer caps (`fast_timers`): never longer than these while the city runs, so
/// every escalation kind shows up within minutes; shorter settings stay.
pub fn cap_timers(timers: &mut TimersConfig) {
    let cap = |v: &mut f64, max: f64| *v = v.min(max);
    cap(&mut timers.merchant_accept_s, 60.0);
    cap(&mut timers.dispatch_remind_s, 120.0);
    cap(&mut timers.pickup_late_s, 120.0);
    cap(&mut timers.delivery_timeout_s, 420.0);
}

/// What the city needs from the server it runs in: tokens and addresses for the links it
/// logs (a rider page to drive by hand, an order to track). The demo itself never speaks
/// HTTP; a host without a server (the soak benchmark) returns empty strings.
pub trait DemoHost {
    /// A token that signs in as this rider.
    fn rider_token(&self, rider: &RiderId) -> String;
    /// A token that signs in as this customer.
    fn customer_token(&self, customer: &CustomerId) -> String;
    /// `http://host:port` of the server.
    fn base_url(&self) -> String;
    fn dispatcher_token(&self) -> String;
}

const DISHES: &[(&str, i64)] = &[
    ("Xiaolongbao", 1800),
    ("Scallion pancake", 900),
    ("Beef noodles", 2600),
    ("Mapo tofu", 2200),
    ("Fried rice", 1600),
    ("Milk tea", 1200),
    ("Dumplings", 2000),
    ("Spring rolls", 1100),
];

fn random_point(rng: &mut StdRng, centre: GeoPoint, radius_m: f64) -> GeoPoint {
    let r = radius_m * rng.gen::<f64>().sqrt();
    centre.destination(rng.gen_range(0.0..360.0), r)
}

fn bearing_deg(from: &GeoPoint, to: &GeoPoint) -> f64 {
    let (la1, la2) = (from.lat().to_radians(), to.lat().to_radians());
    let dlon = (to.lon() - from.lon()).to_radians();
    let y = dlon.sin() * la2.cos();
    let x = la1.cos() * la2.sin() - la1.sin() * la2.cos() * dlon.cos();
    y.atan2(x).to_degrees()
}

/// How one run of the city varies from the one `cargo run` shows.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Makes a run repeatable; `None` takes a seed from the OS.
    pub seed: Option<u64>,
    /// Kitchen 1 is the one every rider declines, so its orders wait for a dispatcher.
    /// Each such order is offered to every rider in reach in turn, which is the point on
    /// the dashboard and a cost that grows with the fleet.
    pub avoided_kitchen: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            seed: None,
            avoided_kitchen: true,
        }
    }
}

/// Seeds the city and starts its simulation on the current arbiter.
pub fn start(engine: Engine, cfg: DemoSettings, host: Arc<dyn DemoHost>) {
    actix_rt::spawn(async move {
        if let Err(e) = run(engine, cfg, host, RunOptions::default()).await {
            tracing::warn!(%e, "demo city stopped");
        }
    });
}

/// Seeds the city, then places orders forever (riders and merchants run as tasks on the
/// current arbiter).
pub async fn run(
    engine: Engine,
    cfg: DemoSettings,
    host: Arc<dyn DemoHost>,
    opts: RunOptions,
) -> Result<(), EngineError> {
    let centre =
        GeoPoint::new(cfg.center_lat, cfg.center_lon).map_err(EngineError::InvalidInput)?;
    let mut rng = match opts.seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_entropy(),
    };
    let mut merchants: Vec<(MerchantId, Vec<ItemId>)> = Vec::new();
    for i in 0..cfg.merchants.max(1) {
        let at = random_point(&mut rng, centre, cfg.radius_m * 0.7);
        let prep = rng.gen_range(180..900);
        // Kitchen 1 is the one riders avoid (long waits): nobody accepts its orders, so
        // they escalate `no_rider` until a dispatcher assigns them by hand.
        let name = if i == 0 && opts.avoided_kitchen {
            "Night Market (riders avoid it)".to_string()
        } else {
            format!("Kitchen {}", i + 1)
        };
        let m = engine.create_merchant(name, at, Some(prep)).await?;
        let mut items = Vec::new();
        for (name, price) in DISHES.iter().filter(|_| rng.gen_bool(0.6)) {
            items.push(
                engine
                    .add_item(&m.merchant_id, name.to_string(), *price)
                    .await?
                    .item_id,
            );
        }
        if items.is_empty() {
            items.push(
                engine
                    .add_item(&m.merchant_id, "Set meal".into(), 2500)
                    .await?
                    .item_id,
            );
        }
        merchants.push((m.merchant_id, items));
    }
    for i in 0..cfg.riders {
        let r = engine.create_rider(format!("Rider {}", i + 1)).await?;
        let start = random_point(&mut rng, centre, cfg.radius_m);
        let outbox = Outbox::new(64);
        engine.attach_rider(&r.rider_id, outbox.clone()).await?;
        let seed = rng.gen();
        let sim = SimRider {
            rider: r.rider_id,
            outbox,
            start,
            seed,
            avoided: opts.avoided_kitchen.then(|| merchants[0].0.clone()),
            flaky: i == 0,
        };
        actix_rt::spawn(rider_loop(engine.clone(), sim, cfg.clone()));
    }
    // A rider for a person to drive by hand, and a customer whose orders can be tracked.
    let you = engine.create_rider("You".into()).await?;
    let you_token = host.rider_token(&you.rider_id);
    let customer = CustomerId::generate();
    let customer_token = host.customer_token(&customer);
    let base = host.base_url();
    tracing::info!(
        "demo city: {} merchants, {} riders around {},{}",
        merchants.len(),
        cfg.riders,
        cfg.center_lat,
        cfg.center_lon
    );
    let dispatcher_token = host.dispatcher_token();
    tracing::info!("dashboard:  {base}/?token={dispatcher_token}");
    tracing::info!("dispatcher token: {dispatcher_token}");
    tracing::info!("rider page: {base}/rider?token={you_token}");
    let per_order = Duration::from_secs_f64(60.0 / cfg.orders_per_minute.max(0.1));
    let mut first = true;
    for n in 0u64.. {
        // The first minutes show every kind of trouble for sure, later it comes by chance:
        // the 2nd order's kitchen never answers, the 3rd goes to the kitchen riders avoid,
        // and then one order in eight does.
        let avoided_turn = n == 2 || (n > 2 && rng.gen_bool(0.125));
        let pick = if opts.avoided_kitchen && avoided_turn {
            0
        } else {
            rng.gen_range(0..merchants.len())
        };
        let (mid, items) = &merchants[pick];
        let n = rng.gen_range(1..=3.min(items.len()));
        let lines: Vec<(ItemId, u32)> = items
            .iter()
            .take(n)
            .map(|i| (i.clone(), rng.gen_range(1..3)))
            .collect();
        let dropoff = random_point(&mut rng, centre, cfg.radius_m);
        if let Ok(order) = engine
            .create_order(customer.clone(), mid, lines, dropoff)
            .await
        {
            let paid = engine
                .order_command(
                    &order.order_id,
                    OrderCommand::Pay {
                        payment_ref: format!("demo-{}", order.order_id),
                    },
                )
                .await;
            if paid.is_ok() {
                if first {
                    tracing::info!(
                        "tracking page: {base}/track/{}?token={customer_token}",
                        order.order_id
                    );
                    first = false;
                }
                let ignore =
                    n == 1 || rng.gen_bool(cfg.merchant_ignore_probability.clamp(0.0, 1.0));
                let accept_after = Duration::from_secs(rng.gen_range(3..40));
                let prep_s = rng.gen_range(120..600);
                actix_rt::spawn(merchant_handles(
                    engine.clone(),
                    order.order_id,
                    ignore,
                    accept_after,
                    prep_s,
                ));
            }
        }
        tokio::time::sleep(per_order.mul_f64(rng.gen_range(0.5..1.5))).await;
    }
    Ok(())
}

/// A merchant accepts after a while (or never) and presses `ready` when the food is done.
async fn merchant_handles(
    engine: Engine,
    order: OrderId,
    ignore: bool,
    after: Duration,
    prep_s: u64,
) {
    if ignore {
        return;
    }
    tokio::time::sleep(after).await;
    if engine.accept_order(&order, Some(prep_s)).await.is_ok() {
        tokio::time::sleep(Duration::from_secs(prep_s)).await;
        let _ = engine.order_command(&order, OrderCommand::MarkReady).await;
    }
}

enum Leg {
    /// To the kitchen; the food is ready at this engine time (ms), if known.
    ToPickup(OrderId, GeoPoint, Option<u64>),
    ToDropoff(OrderId, GeoPoint),
}

impl Leg {
    fn order_id(&self) -> &OrderId {
        match self {
            Leg::ToPickup(id, ..) | Leg::ToDropoff(id, _) => id,
        }
    }
}

/// One simulated rider.
struct SimRider {
    rider: RiderId,
    outbox: Outbox<RiderNotice>,
    start: GeoPoint,
    seed: u64,
    /// The kitchen whose offers every rider declines, if any.
    avoided: Option<MerchantId>,
    /// Goes silent on its first job (rider_silent, then rider_lost).
    flaky: bool,
}

async fn rider_loop(engine: Engine, sim: SimRider, cfg: DemoSettings) {
    let SimRider {
        rider,
        outbox,
        start,
        seed,
        avoided,
        flaky,
    } = sim;

    let mut rng = StdRng::seed_from_u64(seed);
    let mut pos = start;
    let mut legs: Vec<Leg> = Vec::new();
    let mut silent_until: Option<tokio::time::Instant> = None;
    let mut went_quiet = false;
    let tick = Duration::from_secs_f64(cfg.fix_interval_s.max(0.5));
    // Riders join over the first few seconds, not all at once.
    tokio::time::sleep(Duration::from_millis(rng.gen_range(0..3000))).await;
    let send = |cmd| engine.rider_command(&rider, cmd).is_ok();
    if !send(RiderCommand::SetOnline(true)) {
        return;
    }
    let fix = |p: &GeoPoint, engine: &Engine| {
        RiderCommand::Location(RawFix {
            lat: Some(p.lat()),
            lon: Some(p.lon()),
            ts_ms: Some(engine.now_ms() as f64),
            ..Default::default()
        })
    };
    send(fix(&pos, &engine));
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    let mut last_move = tokio::time::Instant::now();
    loop {
        tokio::select! {
            notice = outbox.recv() => {
                let Some(notice) = notice else { return };
                match notice {
                    RiderNotice::Offer(o) => {
                        if silent_until.is_some() {
                            continue; // a silent rider ignores offers; they expire
                        }
                        let avoid = avoided.as_ref() == Some(&o.pickup.merchant_id);
                        let cmd = if avoid || rng.gen_bool(cfg.decline_probability.clamp(0.0, 1.0)) {
                            RiderCommand::Decline { offer_id: o.offer_id }
                        } else {
                            RiderCommand::Accept { offer_id: o.offer_id }
                        };
                        send(cmd);
                    }
                    RiderNotice::Assigned { order } => {
                        legs.retain(|l| *l.order_id() != order.order_id);
                        legs.push(Leg::ToPickup(order.order_id.clone(), order.pickup.point(), order.ready_at_ms));
                        legs.push(Leg::ToDropoff(order.order_id, order.dropoff));
                        if flaky && !went_quiet {
                            // This rider's phone dies on its first job: silent, then lost.
                            went_quiet = true;
                            silent_until = Some(tokio::time::Instant::now() + Duration::from_secs(150));
                        }
                    }
                    RiderNotice::OrderUpdated { order } if order.ready => {
                        for l in legs.iter_mut() {
                            if let Leg::ToPickup(id, _, ready_at) = l {
                                if *id == order.order_id {
                                    *ready_at = None;
                                }
                            }
                        }
                    }
                    RiderNotice::OrderCancelled { order_id } | RiderNotice::Unassigned { order_id, .. } => {
                        legs.retain(|l| *l.order_id() != order_id);
                    }
                    _ => {}
                }
            }
            _ = timer.tick() => {
                let now = tokio::time::Instant::now();
                let dt = now.duration_since(last_move).as_secs_f64();
                last_move = now;
                if let Some(until) = silent_until {
                    if now < until { continue; }
                    silent_until = None;
                }
                if rng.gen_bool(cfg.silence_probability.clamp(0.0, 1.0)) {
                    silent_until = Some(now + Duration::from_secs(rng.gen_range(40..160)));
                    continue;
                }
                let step = cfg.rider_speed_mps * dt;
                match legs.first() {
                    Some(Leg::ToPickup(id, to, _)) | Some(Leg::ToDropoff(id, to)) => {
                        let (id, to) = (id.clone(), *to);
                        let d = pos.distance_m(&to);
                        let waiting_for_food = matches!(legs.first(),
                            Some(Leg::ToPickup(_, _, Some(ready))) if *ready > engine.now_ms());
                        if d > step {
                            pos = pos.destination(bearing_deg(&pos, &to), step);
                        } else if waiting_for_food {
                            pos = to; // at the counter, waiting for the food
                        } else {
                            pos = to;
                            let cmd = match legs.remove(0) {
                                Leg::ToPickup(..) => RiderCommand::PickedUp { order_id: id },
                                Leg::ToDropoff(..) => RiderCommand::Delivered { order_id: id },
                            };
                            send(fix(&pos, &engine));
                            send(cmd);
                            continue;
                        }
                    }
                    None => {
                        // idle riders drift a little, as riders waiting for work do
                        pos = pos.destination(rng.gen_range(0.0..360.0), rng.gen_range(0.0..step * 0.2));
                    }
                }
                send(fix(&pos, &engine));
            }
        }
    }
}
