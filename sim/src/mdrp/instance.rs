//! Reading an MDRP instance directory (`orders.txt`, `restaurants.txt`, `couriers.txt`,
//! `instance_parameters.txt`; the formats are in the mdrplib README), and the benchmark's
//! travel-time rule.

use super::{num, rows};
use std::path::{Path, PathBuf};

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

/// The text of an instance's four files.
#[derive(Debug, Clone, Copy)]
pub struct InstanceTexts<'a> {
    pub instance_parameters: &'a str,
    pub restaurants: &'a str,
    pub orders: &'a str,
    pub couriers: &'a str,
}

impl Instance {
    /// Reads `orders.txt`, `restaurants.txt`, `couriers.txt` and `instance_parameters.txt`.
    pub fn load(dir: &Path) -> Result<Instance, String> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "instance".into());
        let read = |file: &str| -> Result<String, String> {
            let p = dir.join(file);
            std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
        };
        let params = read("instance_parameters.txt")?;
        let restaurants = read("restaurants.txt")?;
        let orders = read("orders.txt")?;
        let couriers = read("couriers.txt")?;
        let texts = InstanceTexts {
            instance_parameters: &params,
            restaurants: &restaurants,
            orders: &orders,
            couriers: &couriers,
        };
        Self::parse(name, dir, texts)
    }

    /// An instance from the text of its files; `dir` only names them in errors.
    pub fn parse(name: String, dir: &Path, texts: InstanceTexts) -> Result<Instance, String> {
        let p: PathBuf = dir.join("instance_parameters.txt");
        let param_rows = rows(texts.instance_parameters, &p, 7)?;
        let r = param_rows
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
        let restaurants = rows(texts.restaurants, &p, 3)?
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
        let orders = rows(texts.orders, &p, 6)?
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
        let couriers = rows(texts.couriers, &p, 5)?
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
        inst.check_bounds()?;
        Ok(inst)
    }

    /// Refuses values the replay cannot run: every time it computes (a minute of the day
    /// plus travel plus service, in milliseconds) must fit its clock. Real instances are a
    /// day long, a city wide, at walking-to-driving speeds; the bounds are far beyond.
    fn check_bounds(&self) -> Result<(), String> {
        let speed = self.params.meters_per_minute;
        if !(MIN_SPEED_M_PER_MIN..=MAX_SPEED_M_PER_MIN).contains(&speed) {
            return Err(format!(
                "meters_per_minute {speed} is outside {MIN_SPEED_M_PER_MIN}..={MAX_SPEED_M_PER_MIN}"
            ));
        }
        let coord = |what: &str, id: &str, x: f64, y: f64| {
            if x.abs() <= MAX_COORD_M && y.abs() <= MAX_COORD_M {
                Ok(())
            } else {
                Err(format!("{what} {id}: coordinates beyond ±{MAX_COORD_M} m"))
            }
        };
        let minute = |what: &str, id: &str, m: u64| {
            if m <= MAX_MINUTE {
                Ok(())
            } else {
                Err(format!("{what} {id}: minute {m} beyond {MAX_MINUTE}"))
            }
        };
        minute("pickup service", "", self.params.pickup_service_min)?;
        minute("dropoff service", "", self.params.dropoff_service_min)?;
        for r in &self.restaurants {
            coord("restaurant", &r.id, r.x, r.y)?;
        }
        for o in &self.orders {
            coord("order", &o.id, o.x, o.y)?;
            minute("order", &o.id, o.placement)?;
            minute("order", &o.id, o.ready)?;
        }
        for c in &self.couriers {
            coord("courier", &c.id, c.x, c.y)?;
            minute("courier", &c.id, c.on)?;
            minute("courier", &c.id, c.off)?;
        }
        Ok(())
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

/// Bounds of an instance's values (`Instance::check_bounds`): with them the longest time
/// the replay computes, ~6e8 minutes, is ~3.4e13 ms, far inside a u64.
const MIN_SPEED_M_PER_MIN: f64 = 1.0;
const MAX_SPEED_M_PER_MIN: f64 = 100_000.0;
const MAX_COORD_M: f64 = 1e8;
const MAX_MINUTE: u64 = 1_000_000;

pub fn euclid(a: (f64, f64), b: (f64, f64)) -> f64 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

/// The README's travel time: `ceil(euclidean metres / meters_per_minute)` whole minutes.
pub fn travel_min(a: (f64, f64), b: (f64, f64), meters_per_minute: f64) -> u64 {
    (euclid(a, b) / meters_per_minute - 1e-9).ceil().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mdrp::test_support::{tiny, tmp};

    #[test]
    fn values_the_replay_cannot_run_are_refused() {
        let params =
            "meters_per_minute pickup dropoff target max pay guaranteed\n100 4 4 40 90 7 15\n";
        let restaurants = "restaurant x y\nr1 0 0\n";
        let couriers = "courier x y on off\nc1 0 0 0 600\n";
        let parse = |params: &str, orders: &str, couriers: &str| {
            Instance::parse(
                "t".into(),
                Path::new("t"),
                InstanceTexts {
                    instance_parameters: params,
                    restaurants,
                    orders,
                    couriers,
                },
            )
        };
        let ok = "order x y placement restaurant ready\no1 100 0 10 r1 20\n";
        assert!(parse(params, ok, couriers).is_ok());
        // Times whose milliseconds overflow the clock.
        let late = "order x y placement restaurant ready\no1 100 0 10 r1 307445734561825860\n";
        assert!(parse(params, late, couriers)
            .unwrap_err()
            .contains("minute"));
        // The input the fuzzer found: an order 1E50 m away, whose travel time in
        // milliseconds overflowed the replay's clock.
        let far = "order x y placement restaurant ready\no1 1000 1E50 12 r1 25\n";
        assert!(parse(params, far, couriers)
            .unwrap_err()
            .contains("coordinates"));
        let slow =
            "meters_per_minute pickup dropoff target max pay guaranteed\n1e-300 4 4 40 90 7 15\n";
        assert!(parse(slow, ok, couriers)
            .unwrap_err()
            .contains("meters_per_minute"));
        let long_shift = "courier x y on off\nc1 0 0 0 99999999999\n";
        assert!(parse(params, ok, long_shift)
            .unwrap_err()
            .contains("minute"));
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
}
