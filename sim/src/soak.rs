//! The soak benchmark: the demo city (simulated riders and merchants, a steady order rate,
//! riders delivering) on the engine with the memory store, under tokio's paused clock, for
//! many hours of engine time. It samples the process's resident memory and the sizes it
//! can see (orders in the store, live order actors, escalations) after the first simulated
//! hour and then at a fixed period, so growth that a long-running city would suffer shows
//! up in minutes of wall time.
//!
//! A dispatcher plays its part as a person at the dashboard would: every few minutes it
//! assigns the orders nobody takes (the demo's avoided kitchen) to an idle rider and
//! resolves the escalations it has seen, so the city reaches a steady state instead of an
//! ever-growing backlog.

use crate::demo::{self, DemoHost, DemoSettings};
use dispatch_actors::domain::escalation::EscalationKind;
use dispatch_actors::domain::rider::RiderStatus;
use dispatch_actors::domain::{CustomerId, RiderId};
use dispatch_actors::store::{MemoryLimits, MemoryStore};
use dispatch_actors::{Clock, Engine, EngineConfig};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Engine time to simulate.
    pub hours: f64,
    /// Sample every this many simulated hours after the first hour.
    pub sample_every_h: f64,
    pub orders_per_s: f64,
    pub riders: usize,
    pub merchants: usize,
    /// Seconds between a simulated rider's fixes.
    pub fix_interval_s: f64,
    pub seed: u64,
    /// Keep the demo's kitchen that every rider declines (see `demo::RunOptions`).
    pub avoided_kitchen: bool,
    /// How long final orders and resolved escalations stay in memory (`retention.final_s`).
    pub retention_s: f64,
}

impl Default for SoakOptions {
    fn default() -> Self {
        Self {
            hours: 24.0,
            sample_every_h: 3.0,
            orders_per_s: 0.5,
            riders: 600,
            merchants: 40,
            fix_interval_s: 10.0,
            seed: 1,
            avoided_kitchen: false,
            retention_s: dispatch_actors::config::RetentionConfig::default().final_s,
        }
    }
}

/// What the soak saw at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Engine hours since the city started.
    pub hour: f64,
    /// Resident memory of this process (/proc/self/statm), bytes.
    pub rss_bytes: u64,
    /// Orders the memory store holds (every order ever placed, today).
    pub store_orders: usize,
    /// Orders whose actor is alive.
    pub live_orders: usize,
    pub escalations: usize,
    pub open_escalations: usize,
    /// Wall seconds since the soak started.
    pub wall_s: f64,
}

impl Sample {
    pub fn header() -> String {
        format!(
            "{:>6} {:>10} {:>12} {:>11} {:>11} {:>9} {:>8}",
            "hour", "rss_mib", "store_orders", "live_orders", "escalations", "open_esc", "wall_s"
        )
    }

    pub fn row(&self) -> String {
        format!(
            "{:>6.1} {:>10.1} {:>12} {:>11} {:>11} {:>9} {:>8.1}",
            self.hour,
            self.rss_bytes as f64 / (1024.0 * 1024.0),
            self.store_orders,
            self.live_orders,
            self.escalations,
            self.open_escalations,
            self.wall_s
        )
    }
}

#[derive(Debug, Clone)]
pub struct SoakReport {
    pub samples: Vec<Sample>,
    /// Orders the dispatcher assigned by hand.
    pub assigned_by_hand: usize,
}

impl SoakReport {
    /// RSS at the end over RSS after the first hour (1.0 = no growth).
    pub fn rss_ratio(&self) -> f64 {
        match (self.samples.first(), self.samples.last()) {
            (Some(a), Some(b)) if a.rss_bytes > 0 => b.rss_bytes as f64 / a.rss_bytes as f64,
            _ => f64::NAN,
        }
    }
}

/// Resident set size of this process in bytes: `/proc/self/statm`'s second field is in
/// pages. 0 where /proc is missing.
pub fn rss_bytes() -> u64 {
    let pages: u64 = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

/// The engine's configuration for a soak: the defaults with the demo's timer caps, the
/// matcher on the current arbiter (required under a paused clock).
pub fn engine_config(retention_s: f64) -> EngineConfig {
    let mut cfg = EngineConfig {
        matcher_own_arbiter: false,
        event_bus_capacity: 65_536,
        ..EngineConfig::default()
    };
    cfg.retention.final_s = retention_s;
    demo::cap_timers(&mut cfg.timers);
    cfg
}

/// The demo's settings for a soak: the default city (its troubles included: merchants
/// that never answer, a kitchen riders avoid, riders going silent), sized by `opts`.
pub fn demo_settings(opts: &SoakOptions) -> DemoSettings {
    DemoSettings {
        merchants: opts.merchants.max(2),
        riders: opts.riders.max(1),
        orders_per_minute: opts.orders_per_s * 60.0,
        fix_interval_s: opts.fix_interval_s,
        ..DemoSettings::default()
    }
}

/// No server around the city: the links the demo logs are left empty.
struct Headless;

impl DemoHost for Headless {
    fn rider_token(&self, _: &RiderId) -> String {
        String::new()
    }
    fn customer_token(&self, _: &CustomerId) -> String {
        String::new()
    }
    fn base_url(&self) -> String {
        String::new()
    }
    fn dispatcher_token(&self) -> String {
        String::new()
    }
}

/// Runs the soak on a fresh actix System with tokio's clock paused, calling `on_sample`
/// as each sample is taken. Blocks until done.
pub fn run(opts: &SoakOptions, mut on_sample: impl FnMut(&Sample)) -> Result<SoakReport, String> {
    if !(opts.hours >= 1.0 && opts.sample_every_h > 0.0 && opts.orders_per_s > 0.0) {
        return Err("hours must be >= 1, sample_every_h and orders_per_s > 0".into());
    }
    let opts = opts.clone();
    let wall = std::time::Instant::now();
    actix_rt::System::new().block_on(async move {
        tokio::time::pause();
        let retention = std::time::Duration::from_secs_f64(opts.retention_s.max(0.0));
        let store = Arc::new(MemoryStore::with_limits(MemoryLimits {
            final_retention: retention,
            resolved_retention: retention,
            ..MemoryLimits::default()
        }));
        let engine = Engine::start(
            engine_config(opts.retention_s),
            store.clone(),
            Clock::system(),
        );
        let city = actix_rt::spawn(demo::run(
            engine.clone(),
            demo_settings(&opts),
            Arc::new(Headless),
            demo::RunOptions {
                seed: Some(opts.seed),
                avoided_kitchen: opts.avoided_kitchen,
            },
        ));
        let assigned_by_hand = Rc::new(Cell::new(0));
        let dispatcher = actix_rt::spawn(dispatcher(engine.clone(), assigned_by_hand.clone()));
        let t0 = tokio::time::Instant::now();
        let mut samples = Vec::new();
        let mut hour = 1.0;
        loop {
            tokio::time::sleep_until(t0 + Duration::from_secs_f64(hour * 3600.0)).await;
            if city.is_finished() {
                return Err("the demo city stopped".to_string());
            }
            let escalations = engine.escalations(false).await.map_err(|e| e.to_string())?;
            let s = Sample {
                hour,
                rss_bytes: rss_bytes(),
                store_orders: store.order_count(),
                live_orders: engine.live_orders().await.len(),
                open_escalations: escalations.iter().filter(|e| e.is_open()).count(),
                escalations: escalations.len(),
                wall_s: wall.elapsed().as_secs_f64(),
            };
            on_sample(&s);
            samples.push(s);
            if hour >= opts.hours {
                break;
            }
            hour = (hour + opts.sample_every_h).min(opts.hours);
        }
        city.abort();
        dispatcher.abort();
        Ok(SoakReport {
            samples,
            assigned_by_hand: assigned_by_hand.get(),
        })
    })
}

/// Every five minutes: assigns each order nobody takes to an idle rider, and resolves the
/// escalations that were open at the previous round (as a person at the dashboard would).
/// Counts the orders it assigns in `assigned`.
async fn dispatcher(engine: Engine, assigned: Rc<Cell<usize>>) {
    let mut seen = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_secs(300)).await;
        let Ok(open) = engine.escalations(true).await else {
            continue;
        };
        let mut idle: Vec<RiderId> = engine
            .riders()
            .await
            .into_iter()
            .filter(|r| r.status == RiderStatus::Idle)
            .map(|r| r.rider_id)
            .collect();
        for e in &open {
            if e.kind != EscalationKind::NoRider {
                continue;
            }
            let (Some(order), Some(rider)) = (&e.order_id, idle.pop()) else {
                continue;
            };
            if engine.assign(order, &rider).await.is_ok() {
                assigned.set(assigned.get() + 1);
            }
        }
        for id in seen.drain(..) {
            let _ = engine.resolve_escalation(id, Some("soak".into())).await;
        }
        seen.extend(open.into_iter().map(|e| e.escalation_id));
    }
}
