//! `seed-redis`: a city's riders, merchants and live orders written straight into Redis
//! under a key prefix, in exactly the format the engine writes: the records are the
//! engine's own types (orders moved through their state machine, rider views derived from
//! rider state) written by dispatch-actors' bulk import, which builds its commands with
//! the write path's own functions. A server started on that prefix recovers them
//! (`recover-time`).
//!
//! Live orders are spread over every non-final status; an assigned or picked-up order has
//! a rider of its own, who is busy with it. Of the other riders `--online-share` are
//! online with a fix from the last few seconds, the rest offline with one from hours ago.
//! Each rider, merchant and customer has a token, as if it had been created over REST.

use crate::city::movement::CityBox;
use dispatch_actors::config::{DispatchConfig, TimersConfig};
use dispatch_actors::domain::gps::GpsFix;
use dispatch_actors::domain::ladder::Timer;
use dispatch_actors::domain::merchant::{Item, Merchant};
use dispatch_actors::domain::offers::OfferBookState;
use dispatch_actors::domain::order::{NewOrder, Order, OrderCommand, OrderLine, OrderStatus};
use dispatch_actors::domain::rider::{RiderState, RiderView};
use dispatch_actors::domain::{
    CustomerId, GeoPoint, ItemId, MerchantId, OfferId, OrderId, RiderId,
};
use dispatch_actors::store::redis::{RedisConfig, RedisStore};
use dispatch_actors::store::{OrderRecord, StoreError, TimerRecord};
use futures_util::stream::{self, StreamExt};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(clap::Args, Debug)]
pub struct SeedArgs {
    #[arg(long, default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,
    /// Key prefix of the store (the server's `store.redis_prefix`), e.g. `seed:`.
    #[arg(long)]
    pub prefix: String,
    #[arg(long, default_value_t = 500_000)]
    pub riders: usize,
    /// Live orders, spread over pending_payment, paid, accepted, assigned and picked_up.
    #[arg(long, default_value_t = 50_000)]
    pub orders: usize,
    #[arg(long, default_value_t = 2_000)]
    pub merchants: usize,
    /// Share of the riders without an order that are online (a fix seconds old); the
    /// others are offline.
    #[arg(long, default_value_t = 0.5)]
    pub online_share: f64,
    /// Deletes every key under the prefix first; without it a prefix that holds keys is
    /// refused.
    #[arg(long)]
    pub replace: bool,
    /// Records per pipeline.
    #[arg(long, default_value_t = 2_000)]
    pub chunk: usize,
    /// Pipelines in flight at once.
    #[arg(long, default_value_t = 4)]
    pub in_flight: usize,
    /// Seed of the random city (the same seed gives the same layout and mix).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 31.23)]
    pub center_lat: f64,
    #[arg(long, default_value_t = 121.47)]
    pub center_lon: f64,
    /// Half the side of the square city, km.
    #[arg(long, default_value_t = 15.0)]
    pub half_km: f64,
}

/// Live statuses and their shares of the seeded orders.
const MIX: [(OrderStatus, f64); 5] = [
    (OrderStatus::PendingPayment, 0.05),
    (OrderStatus::Paid, 0.10),
    (OrderStatus::Accepted, 0.25),
    (OrderStatus::Assigned, 0.30),
    (OrderStatus::PickedUp, 0.30),
];

fn fail(msg: &str) -> ! {
    eprintln!("seed-redis: {msg}");
    std::process::exit(2);
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

fn token(rng: &mut impl RngCore) -> String {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The store the tool writes through: a generous timeout, since a pipeline of a few
/// thousand records is far larger than any write of the engine.
pub async fn open_store(url: &str, prefix: &str) -> RedisStore {
    let store = RedisStore::open(RedisConfig {
        url: url.into(),
        prefix: prefix.into(),
        op_timeout: Duration::from_secs(30),
        ..RedisConfig::default()
    })
    .unwrap_or_else(|e| fail(&format!("redis: {e}")));
    let t = Instant::now();
    while !store.reachable() {
        if t.elapsed() > Duration::from_secs(5) {
            fail(&format!("redis at {url} does not answer"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store
}

pub async fn run(a: SeedArgs) {
    if a.prefix.is_empty() {
        fail("--prefix must not be empty (the tool deletes and writes keys under it)");
    }
    if !(0.0..=1.0).contains(&a.online_share) {
        fail("--online-share is a share (0..=1)");
    }
    if a.merchants == 0 || a.chunk == 0 || a.in_flight == 0 {
        fail("--merchants, --chunk and --in-flight must be positive");
    }
    let store = open_store(&a.redis_url, &a.prefix).await;
    let mut conn = redis::Client::open(a.redis_url.as_str())
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| fail(&format!("redis: {e}")));
    let (_, found): (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg(format!("{}*", a.prefix))
        .arg("COUNT")
        .arg(10_000)
        .query(&mut conn)
        .unwrap_or_else(|e| fail(&format!("redis: {e}")));
    if a.replace {
        let t = Instant::now();
        let n = store
            .delete_all()
            .await
            .unwrap_or_else(|e| fail(&e.to_string()));
        println!(
            "# deleted {n} keys under {:?} in {:.1} s",
            a.prefix,
            t.elapsed().as_secs_f64()
        );
    } else if !found.is_empty() {
        fail(&format!(
            "keys under {:?} exist already (e.g. {}); --replace deletes them first",
            a.prefix, found[0]
        ));
    }

    let t_build = Instant::now();
    let city = City::build(&a);
    println!(
        "# built {} riders ({} busy, {} online idle), {} orders, {} merchants, {} tokens in {:.1} s",
        city.riders.len(),
        city.busy,
        city.online_idle,
        city.orders.len(),
        city.merchants.len(),
        city.tokens.len(),
        t_build.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let s = &store;
    write("merchants", &city.merchants, &a, |c| s.import_merchants(c)).await;
    write("riders", &city.riders, &a, |c| s.import_riders(c)).await;
    write("positions", &city.positions, &a, |c| s.import_positions(c)).await;
    write("tokens", &city.tokens, &a, |c| s.import_tokens(c)).await;
    write("orders", &city.orders, &a, |c| s.import_orders(c)).await;
    let secs = t.elapsed().as_secs_f64();
    let records = city.merchants.len()
        + city.riders.len()
        + city.positions.len()
        + city.tokens.len()
        + city.orders.len();
    println!(
        "seeded {:?}: {} riders, {} live orders, {} merchants, {} tokens in {secs:.1} s ({:.0} records/s)",
        a.prefix,
        city.riders.len(),
        city.orders.len(),
        city.merchants.len(),
        city.tokens.len(),
        records as f64 / secs
    );
    let mut by_status = [0usize; 5];
    for o in &city.orders {
        if let Some(i) = MIX.iter().position(|(s, _)| *s == o.order.status) {
            by_status[i] += 1;
        }
    }
    let mix: Vec<String> = MIX
        .iter()
        .zip(by_status)
        .map(|((s, _), n)| format!("{s} {n}"))
        .collect();
    println!("# orders by status: {}", mix.join(", "));
}

/// Writes `items` in chunks of `--chunk`, `--in-flight` pipelines at once.
async fn write<'a, T, F, Fut>(what: &str, items: &'a [T], a: &SeedArgs, import: F)
where
    F: Fn(&'a [T]) -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let t = Instant::now();
    let results: Vec<Result<(), StoreError>> = stream::iter(items.chunks(a.chunk).map(import))
        .buffer_unordered(a.in_flight)
        .collect()
        .await;
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        fail(&format!("writing {what}: {e}"));
    }
    println!(
        "# {what}: {} in {:.2} s",
        items.len(),
        t.elapsed().as_secs_f64()
    );
}

/// Everything written, built in memory first.
struct City {
    merchants: Vec<(Merchant, Vec<Item>)>,
    riders: Vec<RiderView>,
    positions: Vec<(RiderId, GeoPoint, u64)>,
    tokens: Vec<(String, String)>,
    orders: Vec<OrderRecord>,
    busy: usize,
    online_idle: usize,
}

fn point(city: &CityBox, rng: &mut impl Rng) -> GeoPoint {
    let (x, y) = city.random_point(rng);
    let (lat, lon) = city.to_latlon(x, y);
    GeoPoint::new(lat, lon).expect("the city box is on the globe")
}

impl City {
    fn build(a: &SeedArgs) -> City {
        let mut rng = SmallRng::seed_from_u64(a.seed);
        let cbox = CityBox::new(a.center_lat, a.center_lon, a.half_km * 1000.0);
        let now = now_ms();
        let mut tokens = Vec::new();
        let merchants: Vec<(Merchant, Vec<Item>)> = (0..a.merchants)
            .map(|i| {
                let id = MerchantId::generate();
                let m = Merchant {
                    merchant_id: id.clone(),
                    name: format!("seed kitchen {i}"),
                    location: point(&cbox, &mut rng),
                    open: true,
                    prep_time_s: rng.gen_range(300..=900),
                };
                let item = Item {
                    item_id: ItemId::generate(),
                    merchant_id: id.clone(),
                    name: "set meal".into(),
                    price_cents: rng.gen_range(1500..=4500),
                    available: true,
                };
                tokens.push((token(&mut rng), format!("merchant:{id}")));
                (m, vec![item])
            })
            .collect();
        let customers: Vec<CustomerId> = (0..(a.orders / 2).max(1))
            .map(|_| {
                let c = CustomerId::generate();
                tokens.push((token(&mut rng), format!("customer:{c}")));
                c
            })
            .collect();
        let mut riders: Vec<RiderState> = (0..a.riders)
            .map(|i| RiderState::new(RiderId::generate(), format!("seed rider {i}")))
            .collect();
        let periods = TimersConfig::default();
        let radius_m = DispatchConfig::default().initial_radius_m;
        let mut orders = Vec::with_capacity(a.orders);
        let mut next_rider = 0;
        for i in 0..a.orders {
            // Statuses in proportion to MIX; one needing a rider falls back to `accepted`
            // once every rider has an order.
            let mut status = status_at(i as f64 / a.orders.max(1) as f64);
            let needs_rider = matches!(status, OrderStatus::Assigned | OrderStatus::PickedUp);
            if needs_rider && next_rider >= riders.len() {
                status = OrderStatus::Accepted;
            }
            let (m, items) = &merchants[rng.gen_range(0..merchants.len())];
            let customer = customers[rng.gen_range(0..customers.len())].clone();
            let dropoff = point(&cbox, &mut rng);
            // Placed within the last four minutes, so that no supervisor timer of the
            // seeded city is due yet when a server recovers it soon after.
            let mut t = now - rng.gen_range(60_000..240_000);
            let mut order = Order::new(
                NewOrder {
                    order_id: OrderId::generate(),
                    customer_id: customer,
                    merchant_id: m.merchant_id.clone(),
                    items: vec![OrderLine {
                        item_id: items[0].item_id.clone(),
                        name: items[0].name.clone(),
                        qty: rng.gen_range(1..=3),
                        price_cents: items[0].price_cents,
                    }],
                    pickup: dispatch_actors::domain::merchant::MerchantState::new(m.clone())
                        .pickup(),
                    dropoff,
                },
                t,
            );
            let rider = needs_rider.then(|| {
                next_rider += 1;
                next_rider - 1
            });
            let mut steps = vec![OrderCommand::Pay {
                payment_ref: format!("seed-{i}"),
            }];
            steps.push(OrderCommand::Accept {
                prep_time_s: m.prep_time_s,
            });
            if let Some(r) = rider {
                let rider_id = riders[r].rider_id.clone();
                steps.push(OrderCommand::Assign {
                    rider_id: rider_id.clone(),
                });
                steps.push(OrderCommand::PickUp { rider_id });
            }
            let mut offers = OfferBookState::default();
            for cmd in steps {
                if order.status == status {
                    break;
                }
                t += rng.gen_range(5_000..20_000);
                if let OrderCommand::Assign { rider_id } = &cmd {
                    offers.won = Some((OfferId::generate(), rider_id.clone()));
                    offers.offered = vec![rider_id.clone()];
                }
                order
                    .apply(cmd, t)
                    .expect("the seed follows the state machine");
            }
            let timer = |timer: Timer, from_ms: u64, after_s: f64| TimerRecord {
                timer,
                due_ms: from_ms + (after_s * 1000.0) as u64,
                fired: 0,
            };
            let entered = order.updated_ms;
            // The timer the engine arms on entering each status (actors/order).
            let timers = match status {
                OrderStatus::Paid => vec![timer(
                    Timer::MerchantAccept,
                    entered,
                    periods.merchant_accept_s,
                )],
                OrderStatus::Accepted => vec![timer(
                    Timer::DispatchRemind,
                    entered,
                    periods.dispatch_remind_s,
                )],
                OrderStatus::Assigned => {
                    let from = order.ready_at_ms.unwrap_or(entered).max(entered);
                    vec![timer(Timer::PickupLate, from, periods.pickup_late_s)]
                }
                OrderStatus::PickedUp => vec![timer(
                    Timer::DeliveryTimeout,
                    entered,
                    periods.delivery_timeout_s,
                )],
                _ => Vec::new(),
            };
            if let Some(r) = rider {
                riders[r].orders.push(order.clone());
            }
            let seq = order.version;
            orders.push(OrderRecord {
                order,
                offers,
                timers,
                // Dispatch started at acceptance, at the initial radius.
                radius_m: if order_dispatched(status) {
                    radius_m
                } else {
                    0.0
                },
                arriving_sent: false,
                seq,
                zone: None,
                base_version: 0,
            });
        }
        let busy = next_rider;
        let mut online_idle = 0;
        let mut positions = Vec::with_capacity(riders.len());
        for r in riders.iter_mut() {
            let busy = !r.orders.is_empty();
            r.online = busy || rng.gen_bool(a.online_share);
            if r.online && !busy {
                online_idle += 1;
            }
            // Online riders were heard from seconds ago; offline ones hours ago.
            let age_ms = if r.online {
                rng.gen_range(0..5_000)
            } else {
                rng.gen_range(3_600_000..86_400_000)
            };
            let at = match r.orders.first() {
                Some(o) if o.status == OrderStatus::Assigned => o.pickup.point(),
                Some(o) => o.dropoff,
                None => point(&cbox, &mut rng),
            };
            let ts_ms = now - age_ms;
            r.last_fix = Some(GpsFix { point: at, ts_ms });
            positions.push((r.rider_id.clone(), at, ts_ms));
            tokens.push((token(&mut rng), format!("rider:{}", r.rider_id)));
        }
        City {
            merchants,
            riders: riders.iter().map(RiderState::view).collect(),
            positions,
            tokens,
            orders,
            busy,
            online_idle,
        }
    }
}

fn order_dispatched(s: OrderStatus) -> bool {
    matches!(
        s,
        OrderStatus::Accepted | OrderStatus::Assigned | OrderStatus::PickedUp
    )
}

/// The status of the order at `share` (0..1) of the way through the seeded orders.
fn status_at(share: f64) -> OrderStatus {
    let mut acc = 0.0;
    for (s, w) in MIX {
        acc += w;
        if share < acc {
            return s;
        }
    }
    MIX[MIX.len() - 1].0
}
