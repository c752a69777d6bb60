//! The three solution files the official evaluator reads (`solution_info_*.txt`): writing
//! them, and reading them back to check what a replay wrote.

use super::{num, read_rows};
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub assignment_time: u64,
    pub pickup_time: u64,
    pub courier: String,
    /// In drop-off sequence (several for a bundle, all of one restaurant).
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
