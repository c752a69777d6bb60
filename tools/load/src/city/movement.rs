//! Where things are in the simulated city: a square box around a centre, in a local
//! flat projection (metres east and north of the centre; fine over ±15 km), and how a
//! rider moves in it.

use rand::Rng;
use std::time::Instant;

const M_PER_DEG_LAT: f64 = 111_320.0;

#[derive(Clone, Copy, Debug)]
pub struct CityBox {
    pub lat0: f64,
    pub lon0: f64,
    /// Half the side of the square, metres.
    pub half_m: f64,
    m_per_deg_lon: f64,
}

impl CityBox {
    pub fn new(lat0: f64, lon0: f64, half_m: f64) -> Self {
        Self {
            lat0,
            lon0,
            half_m,
            m_per_deg_lon: M_PER_DEG_LAT * lat0.to_radians().cos(),
        }
    }

    /// (lat, lon) of a point `x` m east and `y` m north of the centre.
    pub fn to_latlon(self, x: f64, y: f64) -> (f64, f64) {
        (
            self.lat0 + y / M_PER_DEG_LAT,
            self.lon0 + x / self.m_per_deg_lon,
        )
    }

    pub fn to_xy(self, lat: f64, lon: f64) -> (f64, f64) {
        (
            (lon - self.lon0) * self.m_per_deg_lon,
            (lat - self.lat0) * M_PER_DEG_LAT,
        )
    }

    pub fn random_point(&self, rng: &mut impl Rng) -> (f64, f64) {
        (
            rng.gen_range(-self.half_m..=self.half_m),
            rng.gen_range(-self.half_m..=self.half_m),
        )
    }

    /// A point `min_m..max_m` away from (x, y) in a random direction, kept inside the box.
    pub fn random_near(
        &self,
        (x, y): (f64, f64),
        min_m: f64,
        max_m: f64,
        rng: &mut impl Rng,
    ) -> (f64, f64) {
        let d = rng.gen_range(min_m..=max_m);
        let a = rng.gen_range(0.0..std::f64::consts::TAU);
        (
            (x + d * a.sin()).clamp(-self.half_m, self.half_m),
            (y + d * a.cos()).clamp(-self.half_m, self.half_m),
        )
    }
}

/// One rider's movement: a heading that drifts, a speed of 5–10 m/s that changes now and
/// then, reflections off the box's edges; with a target (the pickup, then the drop-off) it
/// heads there and waits on arrival.
pub struct Mover {
    pub x: f64,
    pub y: f64,
    /// Compass heading, radians (0 north, clockwise).
    pub heading: f64,
    pub speed: f64,
    pub target: Option<(f64, f64)>,
    last: Instant,
    /// Speed reported with the last fix (0 while waiting at a target).
    pub moving_speed: f64,
}

impl Mover {
    pub fn new(city: &CityBox, rng: &mut impl Rng) -> Self {
        let (x, y) = city.random_point(rng);
        Self {
            x,
            y,
            heading: rng.gen_range(0.0..std::f64::consts::TAU),
            speed: rng.gen_range(5.0..=10.0),
            target: None,
            last: Instant::now(),
            moving_speed: 0.0,
        }
    }

    /// Advances to `now`.
    pub fn step(&mut self, city: &CityBox, now: Instant, rng: &mut impl Rng) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        if dt <= 0.0 {
            return;
        }
        // A new speed every ~30 s on average.
        if rng.gen_bool((dt / 30.0).min(1.0)) {
            self.speed = rng.gen_range(5.0..=10.0);
        }
        let mut dist = self.speed * dt;
        if let Some((tx, ty)) = self.target {
            let (dx, dy) = (tx - self.x, ty - self.y);
            let left = dx.hypot(dy);
            if left <= dist {
                self.x = tx;
                self.y = ty;
                self.moving_speed = 0.0;
                return;
            }
            self.heading = dx.atan2(dy) + rng.gen_range(-0.05..0.05);
        } else {
            // A random walk of the heading, ~0.3 rad per √s.
            self.heading += rng.gen_range(-0.3..0.3) * dt.sqrt();
        }
        self.moving_speed = self.speed;
        let h = city.half_m;
        // Up to two reflections (a corner) per step.
        for _ in 0..3 {
            let nx = self.x + dist * self.heading.sin();
            let ny = self.y + dist * self.heading.cos();
            if (-h..=h).contains(&nx) && (-h..=h).contains(&ny) {
                self.x = nx;
                self.y = ny;
                dist = 0.0;
                break;
            }
            if !(-h..=h).contains(&nx) {
                self.heading = -self.heading; // mirror east-west
            }
            if !(-h..=h).contains(&ny) {
                self.heading = std::f64::consts::PI - self.heading; // mirror north-south
            }
        }
        if dist > 0.0 {
            self.x = self.x.clamp(-h, h);
            self.y = self.y.clamp(-h, h);
        }
        self.heading = self.heading.rem_euclid(std::f64::consts::TAU);
    }

    pub fn heading_deg(&self) -> f64 {
        self.heading.to_degrees().rem_euclid(360.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::time::Duration;

    #[test]
    fn round_trips_and_stays_in_the_box_at_rider_speeds() {
        let city = CityBox::new(31.23, 121.47, 15_000.0);
        let (lat, lon) = city.to_latlon(1000.0, -2000.0);
        let (x, y) = city.to_xy(lat, lon);
        assert!((x - 1000.0).abs() < 1e-6 && (y + 2000.0).abs() < 1e-6);

        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let mut m = Mover::new(&city, &mut rng);
        let t0 = Instant::now();
        m.last = t0;
        let mut prev = (m.x, m.y);
        for i in 1..=20_000u64 {
            // 20,000 steps of 1 s: far longer than the box is wide.
            m.step(&city, t0 + Duration::from_secs(i), &mut rng);
            assert!(m.x.abs() <= 15_000.0 && m.y.abs() <= 15_000.0);
            let moved = (m.x - prev.0).hypot(m.y - prev.1);
            assert!(moved <= 10.0 + 1e-9, "moved {moved} m in 1 s");
            prev = (m.x, m.y);
        }
    }

    #[test]
    fn reaches_a_target_and_waits_there() {
        let city = CityBox::new(31.23, 121.47, 15_000.0);
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let mut m = Mover::new(&city, &mut rng);
        let t0 = Instant::now();
        m.last = t0;
        m.x = 0.0;
        m.y = 0.0;
        m.target = Some((300.0, 400.0)); // 500 m
        m.step(&city, t0 + Duration::from_secs(200), &mut rng);
        assert_eq!((m.x, m.y), (300.0, 400.0));
        assert_eq!(m.moving_speed, 0.0);
    }
}
