//! What a `city` run prints: one line per interval, a Markdown summary at the end, and
//! the CSV (interval rows, then one `summary` row). The columns are listed in `COLUMNS`
//! and documented in the crate's module doc (src/main.rs).

use crate::stats::{max_ms, q_ms, Snap};
use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// The CSV header, in order.
pub const COLUMNS: &[&str] = &[
    "kind",
    "elapsed_s",
    "riders",
    "sockets_open",
    "fixes_per_s_target",
    "fixes_per_s",
    "orders_per_s_target",
    "orders_per_s",
    "orders_accepted",
    "orders_dropped",
    "offers",
    "offer_samples",
    "offer_p50_ms",
    "offer_p99_ms",
    "offer_max_ms",
    "no_offer",
    "accept_p99_ms",
    "healthz_p99_ms",
    "readyz_p99_ms",
    "metrics_p99_ms",
    "delivered",
    "server_rss_mib",
    "server_cpu_cores",
    "rss_per_rider_kib",
    "errors",
];

/// One CSV row: an interval (`kind` = "interval", counts and percentiles of that
/// interval) or the run (`kind` = "summary", totals, averages, percentiles of the run).
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub kind: &'static str,
    pub elapsed_s: f64,
    pub riders: usize,
    pub sockets_open: i64,
    pub fixes_per_s_target: f64,
    pub fixes_per_s: f64,
    pub orders_per_s_target: f64,
    pub orders_per_s: f64,
    pub orders_accepted: u64,
    pub orders_dropped: u64,
    pub offers: u64,
    pub offer_samples: u64,
    pub offer_p50_ms: Option<f64>,
    pub offer_p99_ms: Option<f64>,
    pub offer_max_ms: Option<f64>,
    pub no_offer: u64,
    pub accept_p99_ms: Option<f64>,
    pub probe_p99_ms: [Option<f64>; 3],
    pub delivered: u64,
    pub server_rss_mib: f64,
    pub server_cpu_cores: f64,
    pub rss_per_rider_kib: f64,
    pub errors: u64,
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.3}"))
}

pub fn short(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v < 10.0 => format!("{v:.2}"),
        Some(v) if v < 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.0}"),
    }
}

pub fn csv_header() -> String {
    COLUMNS.join(",")
}

pub fn csv_row(r: &Row) -> String {
    let cols = [
        r.kind.to_string(),
        format!("{:.1}", r.elapsed_s),
        r.riders.to_string(),
        r.sockets_open.to_string(),
        format!("{:.1}", r.fixes_per_s_target),
        format!("{:.1}", r.fixes_per_s),
        format!("{:.2}", r.orders_per_s_target),
        format!("{:.2}", r.orders_per_s),
        r.orders_accepted.to_string(),
        r.orders_dropped.to_string(),
        r.offers.to_string(),
        r.offer_samples.to_string(),
        opt(r.offer_p50_ms),
        opt(r.offer_p99_ms),
        opt(r.offer_max_ms),
        r.no_offer.to_string(),
        opt(r.accept_p99_ms),
        opt(r.probe_p99_ms[0]),
        opt(r.probe_p99_ms[1]),
        opt(r.probe_p99_ms[2]),
        r.delivered.to_string(),
        format!("{:.1}", r.server_rss_mib),
        format!("{:.3}", r.server_cpu_cores),
        format!("{:.2}", r.rss_per_rider_kib),
        r.errors.to_string(),
    ];
    debug_assert_eq!(cols.len(), COLUMNS.len());
    cols.join(",")
}

/// The line printed every interval.
pub fn line(r: &Row) -> String {
    format!(
        "[{:>6.1} s] fixes/s {:>7.0} | orders/s {:>6.1} | offers {:>5} (first-offer p50 {} / p99 {} ms) | \
         probe p99 healthz {} readyz {} metrics {} ms | server {:.1} MiB, {:.2} cores | sockets {} | errors {}",
        r.elapsed_s,
        r.fixes_per_s,
        r.orders_per_s,
        r.offers,
        short(r.offer_p50_ms),
        short(r.offer_p99_ms),
        short(r.probe_p99_ms[0]),
        short(r.probe_p99_ms[1]),
        short(r.probe_p99_ms[2]),
        r.server_rss_mib,
        r.server_cpu_cores,
        r.sockets_open,
        r.errors
    )
}

/// A two-column Markdown table.
pub fn markdown(rows: &[(String, String)]) -> String {
    let mut s = String::from("| measure | value |\n|---|---|\n");
    for (k, v) in rows {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    s
}

pub fn ms3(p50: Option<f64>, p99: Option<f64>, max: Option<f64>) -> String {
    format!(
        "p50 {} ms, p99 {} ms, max {} ms",
        short(p50),
        short(p99),
        short(max)
    )
}

/// What one report row is made of: counts over `over_s` seconds and their histograms.
pub struct Measured<'a> {
    pub kind: &'static str,
    pub elapsed_s: f64,
    pub over_s: f64,
    pub sockets_open: i64,
    pub counts: &'a Snap,
    pub offer: &'a Histogram<u64>,
    pub accept: &'a Histogram<u64>,
    pub probes: &'a [Histogram<u64>],
    pub rss_kib: u64,
    pub cores: f64,
}

/// One row of the report (an interval or the summary) on top of the run's fixed columns.
pub fn measured_row(base: &Row, m: Measured) -> Row {
    let d = m.counts;
    Row {
        kind: m.kind,
        elapsed_s: m.elapsed_s,
        sockets_open: m.sockets_open,
        fixes_per_s: d.fixes_sent as f64 / m.over_s,
        orders_per_s: d.orders_created as f64 / m.over_s,
        orders_accepted: d.orders_accepted,
        orders_dropped: d.orders_dropped,
        offers: d.offers,
        offer_samples: d.offers_timed,
        offer_p50_ms: q_ms(m.offer, 0.5),
        offer_p99_ms: q_ms(m.offer, 0.99),
        offer_max_ms: max_ms(m.offer),
        no_offer: d.no_offer,
        accept_p99_ms: q_ms(m.accept, 0.99),
        probe_p99_ms: [0, 1, 2].map(|i| q_ms(&m.probes[i], 0.99)),
        delivered: d.delivered_sent,
        server_rss_mib: m.rss_kib as f64 / 1024.0,
        server_cpu_cores: m.cores,
        errors: d.errors,
        ..base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_has_every_column() {
        let r = Row {
            kind: "summary",
            offer_p50_ms: Some(1.5),
            ..Row::default()
        };
        let cells = csv_row(&r);
        assert_eq!(cells.split(',').count(), COLUMNS.len());
        assert!(cells.starts_with("summary,0.0,0,0,"));
        assert!(line(&r).contains("p50 1.50 /"));
    }
}
