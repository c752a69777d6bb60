//! Reading the server's `/metrics` (Prometheus text format): one sample, the sum of a
//! metric's series, and quantiles of a histogram from its buckets.

/// The value of the sample line `series` (name with its labels, exactly as exported).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The sum of every series of the metric `name` (0 when it has none).
pub fn sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A histogram's sample count and its quantiles `qs` (0..1), from the cumulative buckets
/// of `name` whose labels (before `le`) are `labels` (e.g. `record="position",` or
/// empty). Within a bucket the value is interpolated linearly, as PromQL's
/// `histogram_quantile` does; a quantile past the last finite bound reads as that bound.
/// None when the histogram has no samples.
pub fn quantiles(text: &str, name: &str, labels: &str, qs: &[f64]) -> Option<(f64, Vec<f64>)> {
    let prefix = format!("{name}_bucket{{{labels}le=\"");
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, rest) = rest.split_once("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, rest.trim().parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let count = buckets.last()?.1;
    if count <= 0.0 {
        return None;
    }
    let at = |q: f64| {
        let rank = q * count;
        let mut lower = (0.0, 0.0);
        for &(le, n) in &buckets {
            if n >= rank {
                if le.is_infinite() {
                    return lower.0;
                }
                let inside = n - lower.1;
                let frac = if inside > 0.0 {
                    (rank - lower.1) / inside
                } else {
                    1.0
                };
                return lower.0 + (le - lower.0) * frac;
            }
            lower = (le, n);
        }
        lower.0
    };
    Some((count, qs.iter().map(|&q| at(q)).collect()))
}

/// Summary rows for the Redis store's histograms, when the server has them (Redis
/// backend): position lag and the position pipeline's round trip, p50 / p99 / p99.9.
pub fn store_rows(text: &str) -> Vec<(String, String)> {
    let qs = [0.5, 0.99, 0.999];
    let mut rows = Vec::new();
    for (what, name, labels) in [
        (
            "store position lag (fix accepted → Redis acknowledged)",
            "dispatch_store_position_lag_seconds",
            "",
        ),
        (
            "store position pipeline round trip",
            "dispatch_store_write_seconds",
            "record=\"position\",",
        ),
    ] {
        if let Some((n, v)) = quantiles(text, name, labels, &qs) {
            rows.push((
                what.to_string(),
                format!(
                    "p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms over {n:.0} writes (server histogram, bucket-interpolated)",
                    v[0] * 1e3,
                    v[1] * 1e3,
                    v[2] * 1e3
                ),
            ));
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE lag histogram
lag_bucket{le="0.01"} 50
lag_bucket{le="0.02"} 90
lag_bucket{le="0.05"} 100
lag_bucket{le="+Inf"} 100
lag_sum 1.5
lag_count 100
riders{status="idle"} 3
riders{status="busy"} 4
riders_other 9
"#;

    #[test]
    fn quantiles_interpolate_within_a_bucket() {
        let (n, v) = quantiles(TEXT, "lag", "", &[0.25, 0.5, 0.7, 0.99]).unwrap();
        assert_eq!(n, 100.0);
        let want = [0.005, 0.01, 0.015, 0.02 + 0.03 * 0.9];
        for (got, want) in v.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn sums_and_samples() {
        assert_eq!(sum(TEXT, "riders"), 7.0);
        assert_eq!(sample(TEXT, "lag_count"), Some(100.0));
        assert_eq!(sample(TEXT, r#"riders{status="busy"}"#), Some(4.0));
        assert_eq!(sample(TEXT, "nope"), None);
    }
}
