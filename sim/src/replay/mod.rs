//! `dispatchd replay --instance DIR`: drives one Grubhub MDRP benchmark instance
//! (grubhub/mdrplib, fetched by tools/fetch-mdrplib.sh; its README has the formats) through
//! the real engine at high speed under tokio's paused clock, writes the three solution files
//! the official evaluator reads, and computes the benchmark's metrics to set beside the
//! published ones.
//!
//! The plain parts (instance and solution files, metrics, the published figures) live in
//! [`crate::mdrp`] with unit tests; they are re-exported here. The simulation (driver.rs,
//! courier.rs) copies the demo city's approach: each courier is a task holding a rider
//! outbox and speaking through `Engine::rider_command`, exactly as a rider socket would.
//!
//! Mapping: engine ms = instance minutes × 60,000 (`Clock::starting_at(0)`); instance
//! metres (x, y) map to a point near the equator (lat = y / 111,195 m, lon = x / 111,195 m),
//! where haversine ≈ euclidean. A simulated courier acts on the instance's whole minutes:
//! it departs at the first whole minute at or after an instruction, travels
//! `ceil(metres / meters_per_minute)` minutes (sending a fix every 10 simulated seconds
//! along the straight line), waits for the food, and follows the README's service times,
//! so every time it writes is an integer obeying the README's rules.

mod courier;
mod driver;

pub use crate::mdrp::instance::{
    euclid, travel_min, Courier, Instance, InstanceOrder, Params, Restaurant,
};
pub use crate::mdrp::metrics::{metrics, percentile, Metrics};
pub use crate::mdrp::published::{mdrplib_root, published, report_table, Published};
pub use crate::mdrp::solution::{
    Assignment, DeliveredOrder, Move, Solution, ASSIGNMENTS_FILE, COURIERS_FILE, ORDERS_FILE,
};

use dispatch_actors::config::Policy;
use dispatch_actors::domain::GeoPoint;
use dispatch_actors::EngineConfig;
use std::collections::BTreeMap;
use std::time::Duration;

/// Metres per degree of latitude (and of longitude at the equator) on the engine's sphere.
const M_PER_DEG: f64 = 111_195.0;

#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Replay only what happens before this instance minute.
    pub until_minute: Option<u64>,
    /// How orders find riders (`dispatch.policy`).
    pub policy: Policy,
    /// `batch` without late commitment (`dispatch.late_commitment = false`), for the
    /// ablation.
    pub no_late_commitment: bool,
    /// `batch` with one order per offer (`dispatch.max_bundle = 1`), for the ablation.
    pub no_bundles: bool,
    /// `batch` without next-job offers (`dispatch.next_job_s = 0`), for the ablation.
    pub no_next_job: bool,
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
    let opts = opts.clone();
    let mut outcome = actix_rt::System::new().block_on(async move {
        tokio::time::pause();
        driver::simulate(inst, &opts).await
    })?;
    outcome.wall = wall.elapsed();
    Ok(outcome)
}

/// The engine's configuration for a replay: matcher on the current arbiter (required
/// under a paused clock), speed from the instance, escalation timers out of the way.
pub fn engine_config(inst: &Instance, opts: &ReplayOptions) -> EngineConfig {
    let mut cfg = EngineConfig::for_tests();
    cfg.dispatch.policy = opts.policy;
    cfg.dispatch.late_commitment = !opts.no_late_commitment;
    if opts.no_bundles {
        cfg.dispatch.max_bundle = 1;
    }
    if opts.no_next_job {
        cfg.dispatch.next_job_s = 0.0;
    }
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
