//! A small MDRP instance the project makes itself: a few dozen orders, couriers and
//! restaurants in the benchmark's own file formats, so the replay runs on a fresh clone
//! without the (unlicensed, never copied) mdrplib data. `tools/make-mdrp-instance.sh`
//! writes one to a folder; the always-on replay test writes one to a temp dir.
//!
//! The city is a 6 km square with the restaurants near its middle, like the benchmark's
//! days; orders arrive over two hours with 8–25 minutes of preparation; the couriers'
//! shifts cover every order with room to spare, so a working engine delivers them all.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// What [`write`] makes.
pub const RESTAURANTS: usize = 8;
pub const COURIERS: usize = 12;
pub const ORDERS: usize = 40;
/// Orders are placed in minutes `[0, PLACEMENT_WINDOW_MIN)`.
pub const PLACEMENT_WINDOW_MIN: u64 = 120;
/// Every shift ends here: an hour after the last placement plus the longest preparation,
/// so no order is left over for want of a courier on shift.
pub const SHIFTS_END_MIN: u64 = 210;

const CITY_M: f64 = 6_000.0;
/// 320 m per minute, the benchmark's `t100` travel speed.
const METERS_PER_MINUTE: u32 = 320;

/// Writes `instance_parameters.txt`, `restaurants.txt`, `couriers.txt`, `orders.txt` and
/// `instance_characteristics.txt` into `dir` (created if missing). The same seed gives the
/// same files.
pub fn write(dir: &Path, seed: u64) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let point = |rng: &mut StdRng, lo: f64, hi: f64| -> (u32, u32) {
        (
            rng.gen_range(lo..hi).round() as u32,
            rng.gen_range(lo..hi).round() as u32,
        )
    };

    // The benchmark's service times, targets and pay, unchanged.
    let params = format!(
        "meters_per_minute\tpickup service minutes\tdropoff service minutes\t\
         target click-to-door\tmaximum click-to-door\tpay per order\tguaranteed pay per hour\n\
         {METERS_PER_MINUTE}\t4\t4\t40\t90\t10\t15\n"
    );
    std::fs::write(dir.join("instance_parameters.txt"), params)?;

    let mut restaurants = String::from("restaurant\tx\ty\n");
    for i in 1..=RESTAURANTS {
        let (x, y) = point(&mut rng, CITY_M * 0.25, CITY_M * 0.75);
        let _ = writeln!(restaurants, "r{i}\t{x}\t{y}");
    }
    std::fs::write(dir.join("restaurants.txt"), restaurants)?;

    // Two thirds start at minute 0, the rest join after half an hour, as shifts do.
    let mut couriers = String::from("courier\tx\ty\ton_time\toff_time\n");
    for i in 1..=COURIERS {
        let (x, y) = point(&mut rng, 0.0, CITY_M);
        let on = if i % 3 == 0 { 30 } else { 0 };
        let _ = writeln!(couriers, "c{i}\t{x}\t{y}\t{on}\t{SHIFTS_END_MIN}");
    }
    std::fs::write(dir.join("couriers.txt"), couriers)?;

    // Rows unsorted by time, as in the benchmark's files.
    let mut orders = String::from("order\tx\ty\tplacement_time\trestaurant\tready_time\n");
    for i in 1..=ORDERS {
        let (x, y) = point(&mut rng, 0.0, CITY_M);
        let placement = rng.gen_range(0..PLACEMENT_WINDOW_MIN);
        let restaurant = rng.gen_range(1..=RESTAURANTS);
        let ready = placement + rng.gen_range(8..=25);
        let _ = writeln!(
            orders,
            "o{i}\t{x}\t{y}\t{placement}\tr{restaurant}\t{ready}"
        );
    }
    std::fs::write(dir.join("orders.txt"), orders)?;

    std::fs::write(
        dir.join("instance_characteristics.txt"),
        format!(
            "number of orders: {ORDERS}\nnumber of restaurants: {RESTAURANTS}\n\
             number of couriers: {COURIERS}\nsynthetic instance, seed {seed}\n"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mdrp::instance::Instance;
    use crate::mdrp::test_support::tmp;

    #[test]
    fn writes_an_instance_the_reader_accepts() {
        let d = tmp("synthetic");
        write(&d, 7).unwrap();
        let inst = Instance::load(&d).unwrap();
        assert_eq!(inst.restaurants.len(), RESTAURANTS);
        assert_eq!(inst.couriers.len(), COURIERS);
        assert_eq!(inst.orders.len(), ORDERS);
        assert_eq!(inst.params.meters_per_minute, f64::from(METERS_PER_MINUTE));
        for o in &inst.orders {
            assert!(o.placement < PLACEMENT_WINDOW_MIN, "{o:?}");
            assert!(o.ready >= o.placement + 8 && o.ready <= o.placement + 25);
            assert!(inst.restaurant(&o.restaurant).is_some());
            assert!((0.0..=CITY_M).contains(&o.x) && (0.0..=CITY_M).contains(&o.y));
        }
        for c in &inst.couriers {
            assert!(c.on < c.off && c.off == SHIFTS_END_MIN);
        }
        // Same seed, same files; another seed, another city.
        let again = tmp("synthetic-again");
        write(&again, 7).unwrap();
        for f in ["orders.txt", "couriers.txt", "restaurants.txt"] {
            assert_eq!(
                std::fs::read(d.join(f)).unwrap(),
                std::fs::read(again.join(f)).unwrap()
            );
        }
        write(&again, 8).unwrap();
        assert_ne!(
            std::fs::read(d.join("orders.txt")).unwrap(),
            std::fs::read(again.join("orders.txt")).unwrap()
        );
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&again);
    }
}
