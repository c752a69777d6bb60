//! The published figures (Reyes et al. 2018) beside an instance set, and the comparison
//! table `dispatchd replay` prints.

use super::metrics::Metrics;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One column of published figures: a label and metric name → value.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub label: String,
    pub values: HashMap<String, f64>,
}

/// The published columns to compare with, read from the mdrplib directory (the parent of
/// `instances/`): the default algorithm and its no-bundling variation over all 240
/// instances (`reyes2018_aggregates.csv`), and this instance's own row where
/// `reyes2018_table9_understaffed.csv` has one. Missing files give fewer columns.
pub fn published(mdrplib: &Path, instance: &str) -> Vec<Published> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string(mdrplib.join("reyes2018_aggregates.csv")) {
        let mut cols: Vec<Published> = Vec::new();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.splitn(7, ',').collect();
            if f.len() < 5 || f[1] != "all 240 instances" {
                continue;
            }
            let (table, algorithm, metric) = (f[0], f[2], f[3]);
            if !(algorithm.starts_with("default (") || algorithm.starts_with("no bundling")) {
                continue;
            }
            let Ok(v) = f[4].parse::<f64>() else { continue };
            let label = format!("{algorithm}, {table}");
            match cols.iter_mut().find(|c| c.label == label) {
                Some(c) => {
                    c.values.insert(metric.to_string(), v);
                }
                None => cols.push(Published {
                    label,
                    values: HashMap::from([(metric.to_string(), v)]),
                }),
            }
        }
        out.extend(cols);
    }
    if let Ok(text) = std::fs::read_to_string(mdrplib.join("reyes2018_table9_understaffed.csv")) {
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            if f.first() == Some(&instance) {
                let values = header
                    .iter()
                    .zip(&f)
                    .skip(1)
                    .filter_map(|(h, v)| Some((h.to_string(), v.parse::<f64>().ok()?)))
                    .collect();
                out.push(Published {
                    label: format!("{instance}, T9"),
                    values,
                });
            }
        }
    }
    out
}

/// The comparison table, as printed.
pub fn report_table(ours: &Metrics, published: &[Published]) -> String {
    let mut s = format!("{:<22} {:>9}", "metric", "ours");
    for p in published {
        let _ = write!(s, "  {:>w$}", p.label, w = p.label.len().max(9));
    }
    s.push('\n');
    for (name, v) in ours.named() {
        let _ = write!(s, "{name:<22} {v:>9.2}");
        for p in published {
            let w = p.label.len().max(9);
            match p.values.get(name) {
                Some(x) => {
                    let _ = write!(s, "  {x:>w$.2}");
                }
                None => {
                    let _ = write!(s, "  {:>w$}", "-");
                }
            }
        }
        s.push('\n');
    }
    s
}

/// The published figures' directory for an instance directory `…/mdrplib/instances/<name>`.
pub fn mdrplib_root(instance_dir: &Path) -> PathBuf {
    instance_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mdrp::test_support::tmp;

    #[test]
    fn reads_published_figures() {
        let d = tmp("published");
        std::fs::write(
            d.join("reyes2018_aggregates.csv"),
            "source_table,subset,algorithm,metric,mean,std,note\n\
             T17,all 240 instances,default (variation 0),ctd_mean_min,32.74,3.34,a note, with a comma\n\
             T15,all 240 instances,no bundling (variation 18),orders_per_bundle,1.00,0,\n\
             T8,o50,all algorithm variations,ctd_mean_min,33.29,3.75,\n",
        )
        .unwrap();
        std::fs::write(
            d.join("reyes2018_table9_understaffed.csv"),
            "instance,orders_per_courier_hour,pct_undelivered,ctd_mean_min\nx1,2.1,3.35,38.24\n",
        )
        .unwrap();
        let p = published(&d, "x1");
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].values["ctd_mean_min"], 32.74);
        assert_eq!(p[1].values["orders_per_bundle"], 1.0);
        assert_eq!(p[2].label, "x1, T9");
        assert_eq!(p[2].values["pct_undelivered"], 3.35);
        assert!(published(&d, "other").len() == 2);
        let _ = std::fs::remove_dir_all(&d);
    }
}
