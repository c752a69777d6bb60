//! A sweep: many MDRP instances replayed under one dispatch policy, several at once, each
//! solution written, read back, checked against the benchmark's rules and measured, and the
//! set summarised beside the published figures (`dispatch-sweep`, docs/dispatch.md).

use crate::mdrp::check::{self, Report};
use crate::mdrp::metrics::Metrics;
use crate::mdrp::published::Published;
use crate::replay::{self, Instance, ReplayOptions, Solution};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One instance's replay in a sweep.
#[derive(Debug, Clone)]
pub struct SweepRow {
    pub instance: String,
    pub metrics: Metrics,
    pub wall_s: f64,
    /// The feasibility check of the solution files as written.
    pub check: Report,
}

/// Instance directories under `instances_dir` whose name contains `only` (all if empty),
/// sorted by name.
pub fn instance_dirs(instances_dir: &Path, only: &str) -> Result<Vec<PathBuf>, String> {
    let read = std::fs::read_dir(instances_dir)
        .map_err(|e| format!("{}: {e}", instances_dir.display()))?;
    let mut dirs: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("orders.txt").is_file())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(only))
        })
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Replays every instance in `dirs`, `jobs` at a time (each on a thread with its own
/// engine), writing each solution under `out/<instance>/` and checking the files as
/// written. `done` is called after each replay (for a progress bar). Rows come back in
/// `dirs` order; a failed replay is an error naming the instance (an infeasible solution
/// is not an error: see [`infeasible`]).
pub fn run(
    dirs: &[PathBuf],
    opts: &ReplayOptions,
    jobs: usize,
    out: &Path,
    done: impl Fn(&str) + Sync,
) -> Result<Vec<SweepRow>, String> {
    let next = Arc::new(Mutex::new(0usize));
    let rows: Mutex<Vec<Option<Result<SweepRow, String>>>> = Mutex::new(vec![None; dirs.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().expect("sweep queue");
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some(dir) = dirs.get(i) else { break };
                let row = one(dir, opts, out);
                let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("?");
                done(name);
                rows.lock().expect("sweep rows")[i] = Some(row);
            });
        }
    });
    rows.into_inner()
        .expect("sweep rows")
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not replayed".into())))
        .collect()
}

fn one(dir: &Path, opts: &ReplayOptions, out: &Path) -> Result<SweepRow, String> {
    let inst = Instance::load(dir)?;
    let outcome = replay::run(&inst, opts).map_err(|e| format!("{}: {e}", inst.name))?;
    let dir = out.join(&inst.name);
    outcome
        .solution
        .write(&dir)
        .map_err(|e| format!("{}: {e}", inst.name))?;
    let written = Solution::read(&dir).map_err(|e| format!("{}: {e}", inst.name))?;
    Ok(SweepRow {
        check: check::check(&outcome.instance, &written),
        instance: inst.name,
        metrics: outcome.metrics,
        wall_s: outcome.wall.as_secs_f64(),
    })
}

/// One CSV line per instance, with a header; `violations` (last) counts the feasibility
/// check's violations (0: feasible).
pub fn csv(rows: &[SweepRow]) -> String {
    let mut s = String::from("instance,orders,delivered,wall_s");
    for (name, _) in Metrics::named(&rows.first().map_or_else(empty, |r| r.metrics.clone())) {
        let _ = write!(s, ",{name}");
    }
    s.push_str(",violations\n");
    for r in rows {
        let _ = write!(
            s,
            "{},{},{},{:.2}",
            r.instance, r.metrics.orders, r.metrics.delivered, r.wall_s
        );
        for (_, v) in r.metrics.named() {
            let _ = write!(s, ",{v:.4}");
        }
        let _ = writeln!(s, ",{}", r.check.violations.len());
    }
    s
}

fn empty() -> Metrics {
    Metrics {
        orders: 0,
        delivered: 0,
        pct_undelivered: 0.0,
        ctd_mean: 0.0,
        ctd_p90: 0.0,
        ctd_overage_mean: 0.0,
        rtp_mean: 0.0,
        rtp_p90: 0.0,
        utilization_mean: 0.0,
        cost_per_order: 0.0,
        orders_per_bundle: 0.0,
    }
}

/// Means over the instances of each metric (NaN-free values only), as the published
/// aggregates are means over instances.
pub fn means(rows: &[SweepRow]) -> Vec<(&'static str, f64)> {
    let Some(first) = rows.first() else {
        return Vec::new();
    };
    first
        .metrics
        .named()
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let vals: Vec<f64> = rows
                .iter()
                .map(|r| r.metrics.named()[i].1)
                .filter(|v| v.is_finite())
                .collect();
            let mean = vals.iter().sum::<f64>() / vals.len().max(1) as f64;
            (*name, mean)
        })
        .collect()
}

/// Instances whose solution broke a rule.
pub fn infeasible(rows: &[SweepRow]) -> Vec<&SweepRow> {
    rows.iter().filter(|r| !r.check.is_feasible()).collect()
}

/// The summary: our means beside each published column (over all 240 instances), how
/// the understaffed instances with a published row of their own (table 9) compare, and
/// the feasibility check of every solution.
pub fn summary(rows: &[SweepRow], published_all: &[Published], table9: &[(String, f64)]) -> String {
    let mut s = String::new();
    let _ = write!(s, "| metric (mean over {} instances) | ours |", rows.len());
    for p in published_all {
        let _ = write!(s, " {} |", p.label);
    }
    s.push_str("\n|---|---|");
    s.push_str(&"---|".repeat(published_all.len()));
    s.push('\n');
    for (name, v) in means(rows) {
        let _ = write!(s, "| {name} | {v:.2} |");
        for p in published_all {
            match p.values.get(name) {
                Some(x) => {
                    let _ = write!(s, " {x:.2} |");
                }
                None => s.push_str(" |"),
            }
        }
        s.push('\n');
    }
    let ours: Vec<(&str, f64, f64)> = table9
        .iter()
        .filter_map(|(inst, published)| {
            rows.iter()
                .find(|r| &r.instance == inst)
                .map(|r| (inst.as_str(), r.metrics.pct_undelivered, *published))
        })
        .collect();
    if !ours.is_empty() {
        let at_or_below = ours.iter().filter(|(_, o, p)| o <= p).count();
        let _ = writeln!(
            s,
            "\nUnderstaffed instances with a published row (table 9): undelivered % at or \
             below the published figure on {at_or_below} of {}.",
            ours.len()
        );
        for (inst, o, p) in ours {
            let _ = writeln!(s, "- {inst}: ours {o:.2} %, published {p:.2} %");
        }
    }
    let bad = infeasible(rows);
    let _ = writeln!(
        s,
        "\nsolutions checked: {}, infeasible: {}",
        rows.len(),
        bad.len()
    );
    for r in bad {
        let _ = writeln!(s, "- {}: {}", r.instance, r.check.summary());
    }
    s
}

/// Table 9's undelivered % per instance, from `reyes2018_table9_understaffed.csv` beside
/// the instances (empty if missing).
pub fn table9(mdrplib: &Path) -> Vec<(String, f64)> {
    let Ok(text) = std::fs::read_to_string(mdrplib.join("reyes2018_table9_understaffed.csv"))
    else {
        return Vec::new();
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(inst), Some(pct)) = (col("instance"), col("pct_undelivered")) else {
        return Vec::new();
    };
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((f.get(inst)?.to_string(), f.get(pct)?.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, pct: f64, ctd: f64) -> SweepRow {
        SweepRow {
            instance: name.into(),
            metrics: Metrics {
                orders: 10,
                delivered: 9,
                pct_undelivered: pct,
                ctd_mean: ctd,
                ..empty()
            },
            wall_s: 1.0,
            check: Report::default(),
        }
    }

    #[test]
    fn means_and_the_summary_set_ours_beside_the_published_figures() {
        let rows = vec![row("a", 2.0, 30.0), row("b", 4.0, 40.0)];
        let m = means(&rows);
        assert_eq!(m[0], ("pct_undelivered", 3.0));
        assert_eq!(m[1], ("ctd_mean_min", 35.0));
        let published = vec![Published {
            label: "default, T17".into(),
            values: [("ctd_mean_min".to_string(), 32.74)].into_iter().collect(),
        }];
        let t = summary(&rows, &published, &[("b".into(), 5.0), ("z".into(), 1.0)]);
        assert!(t.contains("| ctd_mean_min | 35.00 | 32.74 |"), "{t}");
        assert!(t.contains("| pct_undelivered | 3.00 | |"), "{t}");
        assert!(t.contains("on 1 of 1"), "{t}");
        assert!(t.contains("solutions checked: 2, infeasible: 0\n"), "{t}");
        let c = csv(&rows);
        assert!(c.starts_with("instance,orders,delivered,wall_s,pct_undelivered,"));
        assert!(c.lines().next().unwrap().ends_with(",violations"), "{c}");
        assert_eq!(c.lines().count(), 3);
        assert!(c.contains("\nb,10,9,1.00,4.0000,40.0000,"), "{c}");
        assert!(c.ends_with(",0\n"), "{c}");
    }

    #[test]
    fn the_summary_and_csv_count_infeasible_solutions() {
        let mut rows = vec![row("a", 2.0, 30.0), row("b", 4.0, 40.0)];
        rows[1].check.violations.push(check::Violation {
            rule: check::Rule::PickupService,
            courier: Some("c1".into()),
            order: None,
            message: "pickup 30".into(),
        });
        assert_eq!(infeasible(&rows).len(), 1);
        let t = summary(&rows, &[], &[]);
        let line = "solutions checked: 2, infeasible: 1\n- b: INFEASIBLE: 1 violations";
        assert!(t.contains(line), "{t}");
        assert!(t.contains("(PICKUP_SERVICE 1)"), "{t}");
        let c = csv(&rows);
        assert!(
            c.contains("\na,") && c.lines().nth(1).unwrap().ends_with(",0"),
            "{c}"
        );
        assert!(c.ends_with(",1\n"), "{c}");
    }
}
