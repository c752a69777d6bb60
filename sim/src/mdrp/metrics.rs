//! The benchmark's metrics over a solution, computed as the official evaluator does.

use super::instance::{travel_min, Courier, Instance};
use super::solution::Solution;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mdrp::solution::{Assignment, DeliveredOrder, Move, ORDERS_FILE};
    use crate::mdrp::test_support::{tiny, tmp};

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
}
