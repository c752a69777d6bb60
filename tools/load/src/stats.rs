//! Counters and latency histograms shared by every task of a load run. Histograms keep
//! microseconds (1 µs to 60 s, 3 significant digits) twice: since the last report
//! (taken and reset by the reporter) and since the start.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// One latency, per report interval and overall.
pub struct Hist {
    inner: Mutex<(Histogram<u64>, Histogram<u64>)>,
}

impl Default for Hist {
    fn default() -> Self {
        Self {
            inner: Mutex::new((new_hist(), new_hist())),
        }
    }
}

impl Hist {
    pub fn record(&self, d: Duration) {
        let us = (d.as_micros() as u64).max(1);
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0.saturating_record(us);
        g.1.saturating_record(us);
    }

    /// What was recorded since the previous call (and starts a new interval).
    pub fn take_interval(&self) -> Histogram<u64> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let h = g.0.clone();
        g.0.reset();
        h
    }

    pub fn total(&self) -> Histogram<u64> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }
}

/// Quantile `q` (0..=1) in milliseconds, None when nothing was recorded.
pub fn q_ms(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
}

pub fn max_ms(h: &Histogram<u64>) -> Option<f64> {
    (!h.is_empty()).then(|| h.max() as f64 / 1000.0)
}

/// Monotonic counters (and one gauge) of a run; `snapshot` for deltas.
#[derive(Default)]
pub struct Counters {
    pub fixes_sent: AtomicU64,
    pub orders_created: AtomicU64,
    pub orders_paid: AtomicU64,
    pub orders_accepted: AtomicU64,
    /// Orders not started because `--max-inflight` REST pipelines were already running.
    pub orders_dropped: AtomicU64,
    /// Offer frames received by any rider socket.
    pub offers: AtomicU64,
    /// First offers of orders this run created (the offer-latency samples).
    pub offers_timed: AtomicU64,
    /// Orders accepted by their merchant that saw no offer within the pending window.
    pub no_offer: AtomicU64,
    pub accepts_sent: AtomicU64,
    pub declines_sent: AtomicU64,
    pub offers_closed: AtomicU64,
    pub assigned: AtomicU64,
    pub unassigned: AtomicU64,
    pub picked_up_sent: AtomicU64,
    pub delivered_sent: AtomicU64,
    pub connect_failed: AtomicU64,
    /// Rider sockets closed or broken while the run still needed them.
    pub ws_lost: AtomicU64,
    pub rest_failed: AtomicU64,
    pub probe_failed: AtomicU64,
    /// `error` frames from the server on rider sockets.
    pub server_errors: AtomicU64,
    pub sockets_open: AtomicI64,
    /// Failures by kind (`connect: …`, `POST /orders: 409 …`, `rider error: rate_limited`).
    kinds: Mutex<BTreeMap<String, u64>>,
}

#[derive(Clone, Copy, Default, Debug)]
pub struct Snap {
    pub fixes_sent: u64,
    pub orders_created: u64,
    pub orders_paid: u64,
    pub orders_accepted: u64,
    pub orders_dropped: u64,
    pub offers: u64,
    pub offers_timed: u64,
    pub no_offer: u64,
    pub delivered_sent: u64,
    pub errors: u64,
}

impl Snap {
    pub fn since(&self, earlier: &Snap) -> Snap {
        Snap {
            fixes_sent: self.fixes_sent - earlier.fixes_sent,
            orders_created: self.orders_created - earlier.orders_created,
            orders_paid: self.orders_paid - earlier.orders_paid,
            orders_accepted: self.orders_accepted - earlier.orders_accepted,
            orders_dropped: self.orders_dropped - earlier.orders_dropped,
            offers: self.offers - earlier.offers,
            offers_timed: self.offers_timed - earlier.offers_timed,
            no_offer: self.no_offer - earlier.no_offer,
            delivered_sent: self.delivered_sent - earlier.delivered_sent,
            errors: self.errors - earlier.errors,
        }
    }
}

pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl Counters {
    /// Counts a failure under `kind` (and nowhere else: the caller bumps its counter).
    pub fn note(&self, kind: impl Into<String>) {
        let mut g = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: a flood of distinct messages folds into one line.
        let kind = kind.into();
        if g.len() >= 200 && !g.contains_key(&kind) {
            *g.entry("(other kinds)".into()).or_default() += 1;
        } else {
            *g.entry(kind).or_default() += 1;
        }
    }

    pub fn kinds(&self) -> BTreeMap<String, u64> {
        self.kinds.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Everything counted as an error: failed connects and requests, lost sockets, failed
    /// probes, `error` frames.
    pub fn errors(&self) -> u64 {
        get(&self.connect_failed)
            + get(&self.ws_lost)
            + get(&self.rest_failed)
            + get(&self.probe_failed)
            + get(&self.server_errors)
    }

    pub fn snapshot(&self) -> Snap {
        Snap {
            fixes_sent: get(&self.fixes_sent),
            orders_created: get(&self.orders_created),
            orders_paid: get(&self.orders_paid),
            orders_accepted: get(&self.orders_accepted),
            orders_dropped: get(&self.orders_dropped),
            offers: get(&self.offers),
            offers_timed: get(&self.offers_timed),
            no_offer: get(&self.no_offer),
            delivered_sent: get(&self.delivered_sent),
            errors: self.errors(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_resets_total_keeps() {
        let h = Hist::default();
        h.record(Duration::from_millis(2));
        h.record(Duration::from_millis(4));
        let i = h.take_interval();
        assert_eq!(i.len(), 2);
        assert!((q_ms(&i, 1.0).unwrap() - 4.0).abs() < 0.01);
        assert!(h.take_interval().is_empty());
        assert_eq!(h.total().len(), 2);
        assert_eq!(q_ms(&h.take_interval(), 0.5), None);
    }

    #[test]
    fn kinds_are_bounded() {
        let c = Counters::default();
        for i in 0..500 {
            c.note(format!("k{i}"));
        }
        let k = c.kinds();
        assert_eq!(k.len(), 201);
        assert_eq!(k["(other kinds)"], 300);
    }
}
