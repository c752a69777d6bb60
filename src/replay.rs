//! `dispatchd replay --instance DIR`: drives one Grubhub MDRP benchmark instance
//! (grubhub/mdrplib; see `../shared/data/mdrplib/README.md`) through the real engine at
//! high speed under tokio's paused clock, writes the three solution files the official
//! evaluator reads, and computes the benchmark's metrics to set beside the published ones.
//!
//! Plain parts (instance and solution parsing, solution writing, metrics, the published
//! figures) are plain functions with unit tests. The simulation beside them copies the demo
//! city's approach: each courier is a task holding a rider outbox and speaking through
//! `Engine::rider_command`, exactly as a rider socket would.
//!
//! Mapping: engine ms = instance minutes × 60,000 (`Clock::starting_at(0)`); instance
//! metres (x, y) map to a point near the equator (lat = y / 111,195 m, lon = x / 111,195 m),
//! where haversine ≈ euclidean. A simulated courier acts on the instance's whole minutes:
//! it departs at the first whole minute at or after an instruction, travels
//! `ceil(metres / meters_per_minute)` minutes (sending a fix every 10 simulated seconds
//! along the straight line), waits for the food, and follows the README's service times,
//! so every time it writes is an integer obeying the README's rules.

use dispatch_actors::domain::gps::RawFix;
use dispatch_actors::domain::merchant::MAX_PREP_TIME_S;
use dispatch_actors::domain::order::OrderCommand;
use dispatch_actors::domain::{CustomerId, GeoPoint, ItemId, MerchantId, OrderId, RiderId};
use dispatch_actors::outbox::Outbox;
use dispatch_actors::protocol::{RiderCommand, RiderNotice};
use dispatch_actors::store::MemoryStore;
use dispatch_actors::{Clock, Engine, EngineConfig};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Metres per degree of latitude (and of longitude at the equator) on the engine's sphere.
const M_PER_DEG: f64 = 111_195.0;
/// A simulated courier sends a fix at least this often (simulated seconds).
const FIX_EVERY_S: f64 = 10.0;

// ------------------------------------------------------------------ instance

#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub meters_per_minute: f64,
    pub pickup_service_min: u64,
    pub dropoff_service_min: u64,
    pub target_ctd_min: f64,
    pub max_ctd_min: f64,
    pub pay_per_order: f64,
    pub guaranteed_pay_per_hour: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Restaurant {
    pub id: String,
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceOrder {
    pub id: String,
    /// Drop-off.
    pub x: f64,
    pub y: f64,
    pub placement: u64,
    pub restaurant: String,
    pub ready: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Courier {
    pub id: String,
    pub x: f64,
    pub y: f64,
    pub on: u64,
    pub off: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub name: String,
    pub params: Params,
    pub restaurants: Vec<Restaurant>,
    pub orders: Vec<InstanceOrder>,
    pub couriers: Vec<Courier>,
}

/// Rows of a whitespace-separated file with one header line.
fn read_rows(path: &Path, min_fields: usize) -> Result<Vec<Vec<String>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() < min_fields {
            return Err(format!(
                "{}:{}: expected {min_fields} fields, found {}",
                path.display(),
                i + 1,
                fields.len()
            ));
        }
        rows.push(fields);
    }
    Ok(rows)
}

fn num<T: std::str::FromStr>(s: &str, path: &Path, what: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{}: {what} is not a number: {s:?}", path.display()))
}

impl Instance {
    /// Reads `orders.txt`, `restaurants.txt`, `couriers.txt` and `instance_parameters.txt`.
    pub fn load(dir: &Path) -> Result<Instance, String> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "instance".into());
        let p = dir.join("instance_parameters.txt");
        let rows = read_rows(&p, 7)?;
        let r = rows
            .first()
            .ok_or_else(|| format!("{}: no values", p.display()))?;
        let params = Params {
            meters_per_minute: num(&r[0], &p, "meters_per_minute")?,
            pickup_service_min: num(&r[1], &p, "pickup service")?,
            dropoff_service_min: num(&r[2], &p, "dropoff service")?,
            target_ctd_min: num(&r[3], &p, "target click-to-door")?,
            max_ctd_min: num(&r[4], &p, "max click-to-door")?,
            pay_per_order: num(&r[5], &p, "pay per order")?,
            guaranteed_pay_per_hour: num(&r[6], &p, "guaranteed pay per hour")?,
        };
        if params.meters_per_minute <= 0.0 {
            return Err(format!("{}: meters_per_minute must be > 0", p.display()));
        }
        let p = dir.join("restaurants.txt");
        let restaurants = read_rows(&p, 3)?
            .into_iter()
            .map(|r| {
                Ok(Restaurant {
                    x: num(&r[1], &p, "x")?,
                    y: num(&r[2], &p, "y")?,
                    id: r[0].clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let p = dir.join("orders.txt");
        let orders = read_rows(&p, 6)?
            .into_iter()
            .map(|r| {
                Ok(InstanceOrder {
                    x: num(&r[1], &p, "x")?,
                    y: num(&r[2], &p, "y")?,
                    placement: num(&r[3], &p, "placement_time")?,
                    restaurant: r[4].clone(),
                    ready: num(&r[5], &p, "ready_time")?,
                    id: r[0].clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let p = dir.join("couriers.txt");
        let couriers = read_rows(&p, 5)?
            .into_iter()
            .map(|r| {
                Ok(Courier {
                    x: num(&r[1], &p, "x")?,
                    y: num(&r[2], &p, "y")?,
                    on: num(&r[3], &p, "on_time")?,
                    off: num(&r[4], &p, "off_time")?,
                    id: r[0].clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let inst = Instance {
            name,
            params,
            restaurants,
            orders,
            couriers,
        };
        for o in &inst.orders {
            if inst.restaurant(&o.restaurant).is_none() {
                return Err(format!(
                    "order {} names unknown restaurant {}",
                    o.id, o.restaurant
                ));
            }
        }
        Ok(inst)
    }

    pub fn restaurant(&self, id: &str) -> Option<&Restaurant> {
        self.restaurants.iter().find(|r| r.id == id)
    }

    /// Only what happens before `minute`: orders placed before it, couriers on before it
    /// (their shifts cut there). Metrics of a cut replay are over this cut instance.
    pub fn until(&self, minute: u64) -> Instance {
        let mut cut = self.clone();
        cut.orders.retain(|o| o.placement < minute);
        cut.couriers.retain(|c| c.on < minute);
        for c in &mut cut.couriers {
            c.off = c.off.min(minute);
        }
        cut
    }
}

pub fn euclid(a: (f64, f64), b: (f64, f64)) -> f64 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

/// The README's travel time: `ceil(euclidean metres / meters_per_minute)` whole minutes.
pub fn travel_min(a: (f64, f64), b: (f64, f64), meters_per_minute: f64) -> u64 {
    (euclid(a, b) / meters_per_minute - 1e-9).ceil().max(0.0) as u64
}

// ------------------------------------------------------------------ solution

#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub assignment_time: u64,
    pub pickup_time: u64,
    pub courier: String,
    /// In drop-off sequence (always one here: the engine does not bundle).
    pub orders: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveredOrder {
    pub order: String,
    pub placement: u64,
    pub ready: u64,
    pub pickup: u64,
    pub dropoff: u64,
    pub courier: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub courier: String,
    pub departure: u64,
    /// `0` (the courier's on-location), a restaurant id or an order id (its drop-off).
    pub origin: String,
    pub destination: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Solution {
    pub assignments: Vec<Assignment>,
    pub orders: Vec<DeliveredOrder>,
    /// Contiguous per courier, in execution order.
    pub moves: Vec<Move>,
}

pub const ASSIGNMENTS_FILE: &str = "solution_info_assignments.txt";
pub const ORDERS_FILE: &str = "solution_info_orders.txt";
pub const COURIERS_FILE: &str = "solution_info_couriers.txt";

impl Solution {
    /// Writes the three files in the README's (the official evaluator's) format.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut s = String::from("assignment_time pickup_time courier_id order_id\n");
        for a in &self.assignments {
            let _ = writeln!(
                s,
                "{} {} {} {}",
                a.assignment_time,
                a.pickup_time,
                a.courier,
                a.orders.join(" ")
            );
        }
        std::fs::write(dir.join(ASSIGNMENTS_FILE), s)?;
        let mut s =
            String::from("order placement_time ready_time pickup_time dropoff_time courier\n");
        for o in &self.orders {
            let _ = writeln!(
                s,
                "{} {} {} {} {} {}",
                o.order, o.placement, o.ready, o.pickup, o.dropoff, o.courier
            );
        }
        std::fs::write(dir.join(ORDERS_FILE), s)?;
        let mut s = String::from("courier_id departure_time origin destination\n");
        for m in &self.moves {
            let _ = writeln!(
                s,
                "{} {} {} {}",
                m.courier, m.departure, m.origin, m.destination
            );
        }
        std::fs::write(dir.join(COURIERS_FILE), s)
    }

    /// Reads the three files back (undelivered orders written as `NaN` are skipped).
    pub fn read(dir: &Path) -> Result<Solution, String> {
        let p = dir.join(ASSIGNMENTS_FILE);
        let assignments = read_rows(&p, 4)?
            .into_iter()
            .map(|r| {
                Ok(Assignment {
                    assignment_time: num(&r[0], &p, "assignment_time")?,
                    pickup_time: num(&r[1], &p, "pickup_time")?,
                    courier: r[2].clone(),
                    orders: r[3..].to_vec(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let p = dir.join(ORDERS_FILE);
        let orders = read_rows(&p, 6)?
            .into_iter()
            .filter(|r| !r.iter().any(|f| f.eq_ignore_ascii_case("nan")))
            .map(|r| {
                Ok(DeliveredOrder {
                    placement: num(&r[1], &p, "placement_time")?,
                    ready: num(&r[2], &p, "ready_time")?,
                    pickup: num(&r[3], &p, "pickup_time")?,
                    dropoff: num(&r[4], &p, "dropoff_time")?,
                    courier: r[5].clone(),
                    order: r[0].clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let p = dir.join(COURIERS_FILE);
        let moves = read_rows(&p, 4)?
            .into_iter()
            .map(|r| {
                Ok(Move {
                    courier: r[0].clone(),
                    departure: num(&r[1], &p, "departure_time")?,
                    origin: r[2].clone(),
                    destination: r[3].clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Solution {
            assignments,
            orders,
            moves,
        })
    }
}

// ------------------------------------------------------------------ metrics

/// The README's metrics, as the official evaluator computes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub orders: usize,
    pub delivered: usize,
    pub pct_undelivered: f64,
    pub ctd_mean: f64,
    pub ctd_p90: f64,
    pub ctd_overage_mean: f64,
    pub rtp_mean: f64,
    pub rtp_p90: f64,
    pub utilization_mean: f64,
    pub cost_per_order: f64,
    pub orders_per_bundle: f64,
}

/// Percentile with linear interpolation between closest ranks (numpy's default).
/// NaN for no values.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (p / 100.0).clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (rank - lo as f64)
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        f64::NAN
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// Metrics of `sol` on `inst`. A move whose endpoint is unknown counts as zero travel.
pub fn metrics(inst: &Instance, sol: &Solution) -> Metrics {
    let p = &inst.params;
    let n = inst.orders.len();
    let delivered = sol.orders.len();
    let ctd: Vec<f64> = sol
        .orders
        .iter()
        .map(|o| o.dropoff as f64 - o.placement as f64)
        .collect();
    let overage: Vec<f64> = ctd
        .iter()
        .map(|c| (c - p.target_ctd_min).max(0.0))
        .collect();
    let rtp: Vec<f64> = sol
        .orders
        .iter()
        .map(|o| o.pickup as f64 - o.ready as f64)
        .collect();
    let place = |id: &str, courier: &Courier| -> Option<(f64, f64)> {
        if id == "0" {
            return Some((courier.x, courier.y));
        }
        if let Some(r) = inst.restaurant(id) {
            return Some((r.x, r.y));
        }
        inst.orders.iter().find(|o| o.id == id).map(|o| (o.x, o.y))
    };
    let mut utilization = Vec::with_capacity(inst.couriers.len());
    let mut pay = 0.0;
    for c in &inst.couriers {
        let travel: u64 = sol
            .moves
            .iter()
            .filter(|m| m.courier == c.id)
            .map(|m| match (place(&m.origin, c), place(&m.destination, c)) {
                (Some(a), Some(b)) => travel_min(a, b, p.meters_per_minute),
                _ => 0,
            })
            .sum();
        let bundles = sol.assignments.iter().filter(|a| a.courier == c.id).count() as u64;
        let carried: u64 = sol
            .assignments
            .iter()
            .filter(|a| a.courier == c.id)
            .map(|a| a.orders.len() as u64)
            .sum();
        let work = travel + p.pickup_service_min * bundles + p.dropoff_service_min * carried;
        let shift = c.off.saturating_sub(c.on) as f64;
        utilization.push(if shift > 0.0 {
            work as f64 / shift
        } else {
            0.0
        });
        let done = sol.orders.iter().filter(|o| o.courier == c.id).count() as f64;
        pay += (p.pay_per_order * done).max(p.guaranteed_pay_per_hour * shift / 60.0);
    }
    let bundle_sizes: Vec<f64> = sol
        .assignments
        .iter()
        .map(|a| a.orders.len() as f64)
        .collect();
    Metrics {
        orders: n,
        delivered,
        pct_undelivered: if n == 0 {
            0.0
        } else {
            100.0 * (n - delivered.min(n)) as f64 / n as f64
        },
        ctd_mean: mean(&ctd),
        ctd_p90: percentile(&ctd, 90.0),
        ctd_overage_mean: mean(&overage),
        rtp_mean: mean(&rtp),
        rtp_p90: percentile(&rtp, 90.0),
        utilization_mean: mean(&utilization),
        cost_per_order: if delivered == 0 {
            f64::NAN
        } else {
            pay / delivered as f64
        },
        orders_per_bundle: mean(&bundle_sizes),
    }
}

impl Metrics {
    /// (name as in the published CSVs, our value).
    pub fn named(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("pct_undelivered", self.pct_undelivered),
            ("ctd_mean_min", self.ctd_mean),
            ("ctd_p90_min", self.ctd_p90),
            ("ctd_overage_mean_min", self.ctd_overage_mean),
            ("rtp_mean_min", self.rtp_mean),
            ("rtp_p90_min", self.rtp_p90),
            ("utilization_mean", self.utilization_mean),
            ("cost_per_order_usd", self.cost_per_order),
            ("orders_per_bundle", self.orders_per_bundle),
        ]
    }
}

// ------------------------------------------------------------------ published figures

/// One column of published figures: a label and metric name → value.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub label: String,
    pub values: HashMap<String, f64>,
}

/// The published columns to compare with, read from the mdrplib directory (the parent of
/// `instances/`): the default algorithm and its no-bundling variation over all 240
/// instances (`reyes2018_aggregates.csv`), and this instance's own row where
/// `reyes2018_table9_understaffed.csv` has one. Missing files give fewer columns.
pub fn published(mdrplib: &Path, instance: &str) -> Vec<Published> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string(mdrplib.join("reyes2018_aggregates.csv")) {
        let mut cols: Vec<Published> = Vec::new();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.splitn(7, ',').collect();
            if f.len() < 5 || f[1] != "all 240 instances" {
                continue;
            }
            let (table, algorithm, metric) = (f[0], f[2], f[3]);
            if !(algorithm.starts_with("default (") || algorithm.starts_with("no bundling")) {
                continue;
            }
            let Ok(v) = f[4].parse::<f64>() else { continue };
            let label = format!("{algorithm}, {table}");
            match cols.iter_mut().find(|c| c.label == label) {
                Some(c) => {
                    c.values.insert(metric.to_string(), v);
                }
                None => cols.push(Published {
                    label,
                    values: HashMap::from([(metric.to_string(), v)]),
                }),
            }
        }
        out.extend(cols);
    }
    if let Ok(text) = std::fs::read_to_string(mdrplib.join("reyes2018_table9_understaffed.csv")) {
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            if f.first() == Some(&instance) {
                let values = header
                    .iter()
                    .zip(&f)
                    .skip(1)
                    .filter_map(|(h, v)| Some((h.to_string(), v.parse::<f64>().ok()?)))
                    .collect();
                out.push(Published {
                    label: format!("{instance}, T9"),
                    values,
                });
            }
        }
    }
    out
}

/// The comparison table, as printed.
pub fn report_table(ours: &Metrics, published: &[Published]) -> String {
    let mut s = format!("{:<22} {:>9}", "metric", "ours");
    for p in published {
        let _ = write!(s, "  {:>w$}", p.label, w = p.label.len().max(9));
    }
    s.push('\n');
    for (name, v) in ours.named() {
        let _ = write!(s, "{name:<22} {v:>9.2}");
        for p in published {
            let w = p.label.len().max(9);
            match p.values.get(name) {
                Some(x) => {
                    let _ = write!(s, "  {x:>w$.2}");
                }
                None => {
                    let _ = write!(s, "  {:>w$}", "-");
                }
            }
        }
        s.push('\n');
    }
    s
}

// ------------------------------------------------------------------ the simulation

#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Replay only what happens before this instance minute.
    pub until_minute: Option<u64>,
}

/// What a replay produced.
#[derive(Debug, Clone)]
pub struct ReplayOutcome {
    /// The instance as replayed (cut by `until_minute`).
    pub instance: Instance,
    pub solution: Solution,
    pub metrics: Metrics,
    pub wall: Duration,
    /// Engine time at the end, in minutes (engine starts at 0).
    pub end_minute: f64,
    pub first_minute: u64,
    pub fixes: u64,
    pub orders_created: u64,
    /// Offers the couriers declined (shift ending before they could pick up).
    pub declined: u64,
    /// Escalations the engine raised during the replay.
    pub escalations: usize,
    /// Engine status at the end of each order the couriers did not deliver.
    pub undelivered_status: BTreeMap<String, usize>,
}

impl ReplayOutcome {
    pub fn events(&self) -> u64 {
        self.fixes + self.orders_created
    }

    pub fn summary(&self) -> String {
        let wall = self.wall.as_secs_f64();
        let span_min = self.end_minute - self.first_minute as f64;
        format!(
            "instance {}: {} orders, {} couriers; delivered {}\n\
             simulated {:.0} min ({:.1} h) in {:.2} s wall: {:.0}x real time\n\
             events: {} fixes + {} orders = {} ({:.0} per wall second); {} offers declined (shift end), {} escalations",
            self.instance.name,
            self.instance.orders.len(),
            self.instance.couriers.len(),
            self.metrics.delivered,
            span_min,
            span_min / 60.0,
            wall,
            span_min * 60.0 / wall.max(1e-9),
            self.fixes,
            self.orders_created,
            self.events(),
            self.events() as f64 / wall.max(1e-9),
            self.declined,
            self.escalations,
        ) + &if self.undelivered_status.is_empty() {
            String::new()
        } else {
            format!("\nundelivered orders by engine status: {:?}", self.undelivered_status)
        }
    }
}

/// Instance metres to a point near the equator (haversine ≈ euclidean there).
pub fn to_geo(x: f64, y: f64) -> GeoPoint {
    GeoPoint::new(y / M_PER_DEG, x / M_PER_DEG)
        .unwrap_or_else(|_| GeoPoint::new(0.0, 0.0).expect("the origin is a valid point"))
}

/// Runs the replay on a fresh actix System with tokio's clock paused. Blocks until done.
pub fn run(inst: &Instance, opts: &ReplayOptions) -> Result<ReplayOutcome, String> {
    let inst = match opts.until_minute {
        Some(m) => inst.until(m),
        None => inst.clone(),
    };
    for (what, x, y) in inst
        .restaurants
        .iter()
        .map(|r| ("restaurant", r.x, r.y))
        .chain(inst.orders.iter().map(|o| ("order", o.x, o.y)))
        .chain(inst.couriers.iter().map(|c| ("courier", c.x, c.y)))
    {
        GeoPoint::new(y / M_PER_DEG, x / M_PER_DEG)
            .map_err(|e| format!("{what} at ({x}, {y}) does not map to a point: {e}"))?;
    }
    let wall = std::time::Instant::now();
    let mut outcome = actix_rt::System::new().block_on(async move {
        tokio::time::pause();
        simulate(inst).await
    })?;
    outcome.wall = wall.elapsed();
    Ok(outcome)
}

/// The engine's configuration for a replay: matcher on the current arbiter (required
/// under a paused clock), speed from the instance, escalation timers out of the way.
pub fn engine_config(inst: &Instance) -> EngineConfig {
    let mut cfg = EngineConfig::for_tests();
    cfg.event_bus_capacity = 65_536;
    cfg.timers.offer_ttl_s = 60.0;
    cfg.timers.merchant_accept_s = 86_400.0;
    cfg.timers.dispatch_remind_s = 86_400.0;
    cfg.timers.pickup_late_s = 86_400.0;
    cfg.timers.delivery_timeout_s = 86_400.0;
    cfg.dispatch.speed_mps = inst.params.meters_per_minute / 60.0;
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (x, y) in inst
        .restaurants
        .iter()
        .map(|r| (r.x, r.y))
        .chain(inst.couriers.iter().map(|c| (c.x, c.y)))
        .chain(inst.orders.iter().map(|o| (o.x, o.y)))
    {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    let diagonal = euclid((x0, y0), (x1, y1));
    cfg.dispatch.max_radius_m = (diagonal * 1.1).max(cfg.dispatch.initial_radius_m);
    cfg
}

struct Sim {
    engine: Engine,
    inst: Rc<Instance>,
    /// Engine order id → index into `inst.orders`.
    orders: RefCell<HashMap<OrderId, usize>>,
    /// tokio instant of instance minute 0.
    t0: Instant,
    fixes: Cell<u64>,
    declined: Cell<u64>,
}

impl Sim {
    fn at(&self, minute: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(minute.max(0.0) * 60.0)
    }
    fn now_min(&self) -> f64 {
        self.engine.now_ms() as f64 / 60_000.0
    }
}

async fn simulate(inst: Instance) -> Result<ReplayOutcome, String> {
    let engine = Engine::start(
        engine_config(&inst),
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

#[derive(Default)]
struct CourierLog {
    moves: Vec<Move>,
    assignments: Vec<Assignment>,
    delivered: Vec<DeliveredOrder>,
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

async fn courier_loop(
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

/// The published figures' directory for an instance directory `…/mdrplib/instances/<name>`.
pub fn mdrplib_root(instance_dir: &Path) -> PathBuf {
    instance_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("dispatchd-replay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Two restaurants, three orders, two couriers; 100 m per minute.
    fn tiny(dir: &Path) {
        std::fs::write(
            dir.join("instance_parameters.txt"),
            "meters_per_minute\tpickup service minutes\tdropoff service minutes\ttarget click-to-door\tmaximum click-to-door\tpay per order\tguaranteed pay per hour\n100\t4\t4\t40\t90\t10\t15\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("restaurants.txt"),
            "restaurant\tx\ty\nr1\t0\t0\nr2\t1000\t0\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("orders.txt"),
            "order\tx\ty\tplacement_time\trestaurant\tready_time\no1\t0\t500\t10\tr1\t20\no2\t1000\t1050\t12\tr2\t25\no3\t0\t0\t30\tr1\t40\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("couriers.txt"),
            "courier\tx\ty\ton_time\toff_time\nc1\t0\t300\t0\t120\nc2\t1000\t0\t0\t60\n",
        )
        .unwrap();
    }

    #[test]
    fn parses_an_instance() {
        let d = tmp("parse");
        tiny(&d);
        let inst = Instance::load(&d).unwrap();
        assert_eq!(inst.params.meters_per_minute, 100.0);
        assert_eq!(inst.params.pickup_service_min, 4);
        assert_eq!(inst.restaurants.len(), 2);
        assert_eq!(
            inst.orders[1],
            InstanceOrder {
                id: "o2".into(),
                x: 1000.0,
                y: 1050.0,
                placement: 12,
                restaurant: "r2".into(),
                ready: 25
            }
        );
        assert_eq!(inst.couriers[1].off, 60);
        let cut = inst.until(30);
        assert_eq!(cut.orders.len(), 2);
        assert_eq!(cut.couriers[0].off, 30);
        std::fs::write(
            d.join("orders.txt"),
            "order\tx\ty\tplacement_time\trestaurant\tready_time\no1\t0\t500\t10\tr9\t20\n",
        )
        .unwrap();
        assert!(Instance::load(&d)
            .unwrap_err()
            .contains("unknown restaurant"));
        std::fs::write(d.join("orders.txt"), "h\no1\t0\tx\t10\tr1\t20\n").unwrap();
        assert!(Instance::load(&d).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn travel_time_is_ceiled_minutes() {
        assert_eq!(travel_min((0.0, 0.0), (300.0, 400.0), 100.0), 5);
        assert_eq!(travel_min((0.0, 0.0), (301.0, 400.0), 100.0), 6);
        assert_eq!(travel_min((0.0, 0.0), (0.0, 0.0), 100.0), 0);
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], 90) == 3.7; ([10, 20], 50) == 15
        assert!((percentile(&[4.0, 1.0, 3.0, 2.0], 90.0) - 3.7).abs() < 1e-12);
        assert_eq!(percentile(&[10.0, 20.0], 50.0), 15.0);
        assert_eq!(percentile(&[7.0], 90.0), 7.0);
        assert!(percentile(&[], 90.0).is_nan());
    }

    #[test]
    fn solution_round_trips_and_metrics_match_a_hand_count() {
        let d = tmp("metrics");
        tiny(&d);
        let inst = Instance::load(&d).unwrap();
        // c1: on-location (0,300) → r1 (3 min), picks o1 up at 20, → (0,500) (5 min).
        // c2: a single move from its on-location straight to o2's drop-off (11 min).
        let sol = Solution {
            assignments: vec![
                Assignment {
                    assignment_time: 10,
                    pickup_time: 20,
                    courier: "c1".into(),
                    orders: vec!["o1".into()],
                },
                Assignment {
                    assignment_time: 12,
                    pickup_time: 25,
                    courier: "c2".into(),
                    orders: vec!["o2".into()],
                },
            ],
            orders: vec![
                DeliveredOrder {
                    order: "o1".into(),
                    placement: 10,
                    ready: 20,
                    pickup: 20,
                    dropoff: 29,
                    courier: "c1".into(),
                },
                DeliveredOrder {
                    order: "o2".into(),
                    placement: 12,
                    ready: 25,
                    pickup: 27,
                    dropoff: 62,
                    courier: "c2".into(),
                },
            ],
            moves: vec![
                Move {
                    courier: "c1".into(),
                    departure: 10,
                    origin: "0".into(),
                    destination: "r1".into(),
                },
                Move {
                    courier: "c1".into(),
                    departure: 22,
                    origin: "r1".into(),
                    destination: "o1".into(),
                },
                Move {
                    courier: "c2".into(),
                    departure: 29,
                    origin: "0".into(),
                    destination: "o2".into(),
                },
            ],
        };
        let out = d.join("sol");
        sol.write(&out).unwrap();
        let header = std::fs::read_to_string(out.join(ORDERS_FILE)).unwrap();
        assert!(header
            .starts_with("order placement_time ready_time pickup_time dropoff_time courier\n"));
        let back = Solution::read(&out).unwrap();
        assert_eq!(back, sol);
        let m = metrics(&inst, &back);
        assert_eq!((m.orders, m.delivered), (3, 2));
        assert!((m.pct_undelivered - 100.0 / 3.0).abs() < 1e-9);
        // CtD 19 and 50: mean 34.5, p90 = 19 + 0.9 · 31 = 46.9, overage (0 + 10) / 2.
        assert!((m.ctd_mean - 34.5).abs() < 1e-9);
        assert!((m.ctd_p90 - 46.9).abs() < 1e-9);
        assert!((m.ctd_overage_mean - 5.0).abs() < 1e-9);
        // RtP 0 and 2.
        assert!((m.rtp_mean - 1.0).abs() < 1e-9);
        // c1: travel 3 + 5, + 4 + 4 over 120 min; c2: travel ceil(1050/100) = 11, + 8 over 60.
        let u1 = 16.0 / 120.0;
        let u2 = 19.0 / 60.0;
        assert!((m.utilization_mean - (u1 + u2) / 2.0).abs() < 1e-9);
        // Pay: c1 max(10, 15 · 2) = 30; c2 max(10, 15) = 15; 45 / 2 delivered.
        assert!((m.cost_per_order - 22.5).abs() < 1e-9);
        assert_eq!(m.orders_per_bundle, 1.0);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn reads_published_figures() {
        let d = tmp("published");
        std::fs::write(
            d.join("reyes2018_aggregates.csv"),
            "source_table,subset,algorithm,metric,mean,std,note\n\
             T17,all 240 instances,default (variation 0),ctd_mean_min,32.74,3.34,a note, with a comma\n\
             T15,all 240 instances,no bundling (variation 18),orders_per_bundle,1.00,0,\n\
             T8,o50,all algorithm variations,ctd_mean_min,33.29,3.75,\n",
        )
        .unwrap();
        std::fs::write(
            d.join("reyes2018_table9_understaffed.csv"),
            "instance,orders_per_courier_hour,pct_undelivered,ctd_mean_min\nx1,2.1,3.35,38.24\n",
        )
        .unwrap();
        let p = published(&d, "x1");
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].values["ctd_mean_min"], 32.74);
        assert_eq!(p[1].values["orders_per_bundle"], 1.0);
        assert_eq!(p[2].label, "x1, T9");
        assert_eq!(p[2].values["pct_undelivered"], 3.35);
        assert!(published(&d, "other").len() == 2);
        let _ = std::fs::remove_dir_all(&d);
    }
}
