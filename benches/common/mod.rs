//! What the city-scale benches share: one synthetic city (riders and query points uniform
//! within ±15 km of 31.23, 121.47, from a seeded RNG, drawn as benches/matcher.rs draws
//! them) and the percentile arithmetic.
//!
//! Each bench uses its own part of this module, so unused items are expected in any one.
#![allow(dead_code)]

use dispatch_actors::domain::{GeoPoint, RiderId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const CITY_CENTRE: (f64, f64) = (31.23, 121.47);
/// Half the city's width: riders and queries fall within ±15 km of the centre.
pub const HALF_WIDTH_M: f64 = 15_000.0;

/// `cargo bench` passes `--bench`; `cargo test --benches` does not. There each bench runs
/// once on a small city, as a smoke test of its code and of its agreement checks.
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

pub fn centre() -> GeoPoint {
    GeoPoint::new(CITY_CENTRE.0, CITY_CENTRE.1).unwrap()
}

/// A point uniform over the city's square (north, then east, of the centre).
pub fn random_point(rng: &mut StdRng) -> GeoPoint {
    let north = rng.gen_range(-HALF_WIDTH_M..HALF_WIDTH_M);
    let east = rng.gen_range(-HALF_WIDTH_M..HALF_WIDTH_M);
    centre().destination(0.0, north).destination(90.0, east)
}

pub fn rider_id(i: usize) -> RiderId {
    RiderId::parse(&format!("r_{i}")).unwrap()
}

/// `n` riders `r_0…`, each available with probability `available_share`.
pub fn riders(n: usize, seed: u64, available_share: f64) -> Vec<(RiderId, GeoPoint, bool)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let at = random_point(&mut rng);
            (rider_id(i), at, rng.gen_bool(available_share))
        })
        .collect()
}

/// `n` points uniform over the city (query places, merchants).
pub fn points(n: usize, seed: u64) -> Vec<GeoPoint> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| random_point(&mut rng)).collect()
}

/// p50, p99 and max of a sample, in its own unit.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

pub fn spread(mut sample: Vec<u64>) -> Spread {
    assert!(!sample.is_empty(), "no samples");
    sample.sort_unstable();
    let at = |q: f64| sample[((sample.len() as f64 * q) as usize).min(sample.len() - 1)];
    Spread {
        p50: at(0.50),
        p99: at(0.99),
        max: *sample.last().unwrap(),
    }
}

pub fn fmt_ns(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.2} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}

impl Spread {
    /// "p50 … p99 … max …" in readable units (the sample in nanoseconds).
    pub fn show_ns(&self) -> String {
        format!(
            "p50 {:>9}  p99 {:>9}  max {:>9}",
            fmt_ns(self.p50),
            fmt_ns(self.p99),
            fmt_ns(self.max)
        )
    }
}
