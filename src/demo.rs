//! The demo city: merchants, riders and a stream of orders around one centre, so a first
//! `cargo run` shows the engine at work. Simulated riders use the rider socket's own code
//! path (an outbox attached to their actor, commands through `Engine::rider_command`):
//! they move in straight lines at a realistic speed, send fixes every `fix_interval_s`,
//! sometimes decline, sometimes go silent; some merchants never answer, and one kitchen's
//! orders nobody accepts (they wait for the dispatcher). So every escalation kind shows
//! up on the dashboard within minutes.

use crate::auth::Principal;
use crate::settings::DemoSettings;
use crate::startup::AppState;
use dispatch_actors::domain::gps::RawFix;
use dispatch_actors::domain::order::OrderCommand;
use dispatch_actors::domain::{CustomerId, GeoPoint, ItemId, MerchantId, OrderId, RiderId};
use dispatch_actors::outbox::Outbox;
use dispatch_actors::protocol::{RiderCommand, RiderNotice};
use dispatch_actors::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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

/// Seeds the city and starts its simulation on the current arbiter.
pub fn start(state: Arc<AppState>, addr: SocketAddr) {
    actix_web::rt::spawn(async move {
        if let Err(e) = run(state, addr).await {
            tracing::warn!(%e, "demo city stopped");
        }
    });
}

async fn run(state: Arc<AppState>, addr: SocketAddr) -> Result<(), dispatch_actors::EngineError> {
    let cfg = state.settings.demo.clone();
    let engine = state.engine.clone();
    let centre = GeoPoint::new(cfg.center_lat, cfg.center_lon)
        .map_err(dispatch_actors::EngineError::InvalidInput)?;
    let mut rng = StdRng::from_entropy();
    let mut merchants: Vec<(MerchantId, Vec<ItemId>)> = Vec::new();
    for i in 0..cfg.merchants.max(1) {
        let at = random_point(&mut rng, centre, cfg.radius_m * 0.7);
        let prep = rng.gen_range(180..900);
        // Kitchen 1 is the one riders avoid (long waits): nobody accepts its orders, so
        // they escalate `no_rider` until a dispatcher assigns them by hand.
        let name = if i == 0 {
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
            avoided: merchants[0].0.clone(),
            flaky: i == 0,
        };
        actix_web::rt::spawn(rider_loop(engine.clone(), sim, cfg.clone()));
    }
    // A rider for a person to drive by hand, and a customer whose orders can be tracked.
    let you = engine.create_rider("You".into()).await?;
    let you_token = state.auth.issue(Principal::Rider(you.rider_id.clone()));
    let customer = CustomerId::generate();
    let customer_token = state.auth.issue(Principal::Customer(customer.clone()));
    let base = format!("http://{addr}");
    tracing::info!(
        "demo city: {} merchants, {} riders around {},{}",
        merchants.len(),
        cfg.riders,
        cfg.center_lat,
        cfg.center_lon
    );
    tracing::info!(
        "dashboard:  {base}/?token={}",
        state.settings.auth.dispatcher_token
    );
    tracing::info!("dispatcher token: {}", state.settings.auth.dispatcher_token);
    tracing::info!("rider page: {base}/rider?token={you_token}");
    let per_order = Duration::from_secs_f64(60.0 / cfg.orders_per_minute.max(0.1));
    let mut first = true;
    for n in 0u64.. {
        // The first minutes show every kind of trouble for sure, later it comes by chance:
        // the 2nd order's kitchen never answers, the 3rd goes to the kitchen riders avoid,
        // and then one order in eight does.
        let pick = if n == 2 || (n > 2 && rng.gen_bool(0.125)) {
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
                actix_web::rt::spawn(merchant_handles(
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
    /// The kitchen whose offers every rider declines.
    avoided: MerchantId,
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
                        let avoid = o.pickup.merchant_id == avoided;
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
