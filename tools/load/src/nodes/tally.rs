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

/// How one order of the run travels: its merchant (whose zone's holder is the order's
/// node) and the node its merchant's accept request was sent to.
#[derive(Clone, Copy, Debug)]
pub struct OrderPath {
    pub merchant: usize,
    pub accept_node: usize,
}

/// Timed first offers of the measured part, by whether they crossed nodes.
#[derive(Debug, Default)]
pub struct OfferSplit {
    /// The rider's socket was on the order's node.
    pub same: Vec<Duration>,
    /// It was on another node: the offer went through the mesh.
    pub crossed: Vec<Duration>,
    /// By mesh hops between the accept request and the offer frame: 0 (accept sent to the
    /// order's node, rider on it), 1 (one of the two elsewhere), 2 (both).
    pub by_hops: [Vec<Duration>; 3],
    /// Orders this run did not place, or whose merchant's zone had no known holder.
    pub unknown: usize,
}

impl OfferSplit {
    /// Splits the offers seen at or after `since`; `orders` gives each order's path,
    /// `merchant_node` a merchant's zone's holder.
    pub fn of(
        log: &[TimedOffer],
        since: Instant,
        orders: &HashMap<String, OrderPath>,
        merchant_node: &[usize],
    ) -> OfferSplit {
        let mut s = OfferSplit::default();
        for o in log.iter().filter(|o| o.at >= since) {
            let Some((path, &home)) = orders
                .get(&o.order_id)
                .and_then(|p| Some((p, merchant_node.get(p.merchant)?)))
            else {
                s.unknown += 1;
                continue;
            };
            if home == o.rider_node {
                s.same.push(o.latency);
            } else {
                s.crossed.push(o.latency);
            }
            let hops = usize::from(path.accept_node != home) + usize::from(o.rider_node != home);
            s.by_hops[hops].push(o.latency);
        }
        s.same.sort();
        s.crossed.sort();
        for v in &mut s.by_hops {
            v.sort();
        }
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
            offer("o1", 0, 3, later), // merchant 0 on node 0, accepted on 0: same, 0 hops
            offer("o2", 1, 9, later), // merchant 0 on node 0, accepted on 1: crossed, 2 hops
            offer("o3", 1, 4, later), // merchant 1 on node 1, accepted on 0: same, 1 hop
            offer("o4", 0, 8, t0),    // before the measured part
            offer("o5", 0, 1, later), // not ours
        ];
        let orders: HashMap<String, OrderPath> =
            [("o1", 0, 0), ("o2", 0, 1), ("o3", 1, 0), ("o4", 1, 1)]
                .into_iter()
                .map(|(o, merchant, accept_node)| {
                    let path = OrderPath {
                        merchant,
                        accept_node,
                    };
                    (o.to_string(), path)
                })
                .collect();
        let s = OfferSplit::of(&log, later, &orders, &[0, 1]);
        assert_eq!(s.same, [ms(3), ms(4)]);
        assert_eq!(s.crossed, [ms(9)]);
        assert_eq!(s.by_hops, [vec![ms(3)], vec![ms(4)], vec![ms(9)]]);
        assert_eq!(s.unknown, 1);
        assert!((s.crossed_share().unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(OfferSplit::default().crossed_share(), None);
    }
}
