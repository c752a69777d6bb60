//! The figures of a `nodes` run, from what its tasks recorded: offers split by whether
//! they crossed nodes (the rider's socket on another node than the order's zone holder),
//! nearest-rank percentiles, and the summary row printed at the end.

use crate::city::rider::TimedOffer;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Nearest-rank percentile `q` (0..=1) of sorted samples, in milliseconds.
pub fn pct_ms(sorted: &[Duration], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    let i = rank.saturating_sub(1).min(sorted.len() - 1);
    Some(sorted[i].as_secs_f64() * 1000.0)
}

/// Timed first offers of the measured part, by whether they crossed nodes.
#[derive(Debug, Default)]
pub struct OfferSplit {
    /// The rider's socket was on the order's node.
    pub same: Vec<Duration>,
    /// It was on another node: the offer went through the mesh.
    pub crossed: Vec<Duration>,
    /// Orders this run did not place, or whose merchant's zone had no known holder.
    pub unknown: usize,
}

impl OfferSplit {
    /// Splits the offers seen at or after `since`; `order_merchant` maps an order to its
    /// merchant's index, `merchant_node` a merchant to its zone's holder.
    pub fn of(
        log: &[TimedOffer],
        since: Instant,
        order_merchant: &HashMap<String, usize>,
        merchant_node: &[usize],
    ) -> OfferSplit {
        let mut s = OfferSplit::default();
        for o in log.iter().filter(|o| o.at >= since) {
            let home = order_merchant
                .get(&o.order_id)
                .and_then(|&m| merchant_node.get(m));
            match home {
                Some(&h) if h == o.rider_node => s.same.push(o.latency),
                Some(_) => s.crossed.push(o.latency),
                None => s.unknown += 1,
            }
        }
        s.same.sort();
        s.crossed.sort();
        s
    }

    /// Share of the known offers that crossed nodes (None: no offer).
    pub fn crossed_share(&self) -> Option<f64> {
        let known = self.same.len() + self.crossed.len();
        (known > 0).then(|| self.crossed.len() as f64 / known as f64)
    }
}

/// `p50 / p95 / p99 ms` of sorted samples, with their count.
pub fn p50_95_99(sorted: &[Duration]) -> String {
    let f = |q| pct_ms(sorted, q).map_or("-".into(), |v| format!("{v:.1}"));
    format!(
        "{} / {} / {} ms (n = {})",
        f(0.5),
        f(0.95),
        f(0.99),
        sorted.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(pct_ms(&v, 0.5), Some(50.0));
        assert_eq!(pct_ms(&v, 0.95), Some(95.0));
        assert_eq!(pct_ms(&v, 0.99), Some(99.0));
        assert_eq!(pct_ms(&v, 1.0), Some(100.0));
        assert_eq!(pct_ms(&v, 0.0), Some(1.0));
        assert_eq!(pct_ms(&[ms(7)], 0.99), Some(7.0));
        assert_eq!(pct_ms(&[], 0.5), None);
        assert_eq!(p50_95_99(&[]), "- / - / - ms (n = 0)");
    }

    #[test]
    fn offers_split_by_the_riders_node_against_the_orders_node() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(5);
        let offer = |id: &str, node, lat, at| TimedOffer {
            order_id: id.into(),
            rider_node: node,
            latency: ms(lat),
            at,
        };
        let log = vec![
            offer("o1", 0, 3, later), // merchant 0 on node 0: same
            offer("o2", 1, 9, later), // merchant 0 on node 0: crossed
            offer("o3", 1, 4, later), // merchant 1 on node 1: same
            offer("o4", 0, 8, t0),    // before the measured part
            offer("o5", 0, 1, later), // not ours
        ];
        let orders: HashMap<String, usize> = [("o1", 0), ("o2", 0), ("o3", 1), ("o4", 1)]
            .into_iter()
            .map(|(o, m)| (o.to_string(), m))
            .collect();
        let s = OfferSplit::of(&log, later, &orders, &[0, 1]);
        assert_eq!(s.same, [ms(3), ms(4)]);
        assert_eq!(s.crossed, [ms(9)]);
        assert_eq!(s.unknown, 1);
        assert!((s.crossed_share().unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(OfferSplit::default().crossed_share(), None);
    }
}
