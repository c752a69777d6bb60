//! `dispatch-sweep [--policy batch] [--jobs 2] [--only 1o50] [--out DIR]`: replays every
//! MDRP instance under one dispatch policy, several at once, with a progress bar; writes
//! each solution, a CSV of per-instance metrics and a summary beside the published
//! figures (dispatch_sim::sweep, docs/dispatch.md). Every solution is checked against the
//! benchmark's rules (dispatch_sim::mdrp::check); the exit status is 1 when any is
//! infeasible (after everything is written), 2 on an error.

use clap::Parser;
use dispatch_actors::config::Policy;
use dispatch_sim::replay::{published, ReplayOptions};
use dispatch_sim::sweep;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "dispatch-sweep",
    about = "Replay every MDRP instance under one policy"
)]
struct Cli {
    /// The benchmark's directory (holding instances/); default: $MDRPLIB_DIR, else
    /// ../shared/data/mdrplib.
    #[arg(long)]
    mdrplib: Option<PathBuf>,
    /// `batch` (the engine's default) or `nearest`.
    #[arg(long, default_value = "batch", value_parser = |s: &str| Policy::try_from(s.to_string()))]
    policy: Policy,
    /// Replays at once (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Only instances whose name contains this.
    #[arg(long, default_value = "")]
    only: String,
    /// `batch` without late commitment (the ablation).
    #[arg(long)]
    no_late_commitment: bool,
    /// `batch` with one order per offer (the ablation).
    #[arg(long)]
    no_bundles: bool,
    /// `batch` without next-job offers (the ablation).
    #[arg(long)]
    no_next_job: bool,
    /// Where solutions, the CSV and the summary go (default: target/sweep-<policy>).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    let root = cli
        .mdrplib
        .or_else(|| std::env::var_os("MDRPLIB_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("../shared/data/mdrplib"));
    let fail = |e: String| -> ! {
        eprintln!("dispatch-sweep: {e}");
        std::process::exit(2);
    };
    let dirs = sweep::instance_dirs(&root.join("instances"), &cli.only).unwrap_or_else(|e| fail(e));
    if dirs.is_empty() {
        fail(format!(
            "no instances under {}",
            root.join("instances").display()
        ));
    }
    let mut policy = format!("{:?}", cli.policy).to_lowercase();
    if cli.no_late_commitment {
        policy.push_str("-no-late-commitment");
    }
    if cli.no_bundles {
        policy.push_str("-no-bundles");
    }
    if cli.no_next_job {
        policy.push_str("-no-next-job");
    }
    let out = cli
        .out
        .unwrap_or_else(|| PathBuf::from(format!("target/sweep-{policy}")));
    let jobs = cli
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let bar = ProgressBar::new(dirs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed_precise} eta {eta} {msg}")
            .expect("a valid template"),
    );
    let opts = ReplayOptions {
        policy: cli.policy,
        no_late_commitment: cli.no_late_commitment,
        no_bundles: cli.no_bundles,
        no_next_job: cli.no_next_job,
        ..ReplayOptions::default()
    };
    let rows = sweep::run(&dirs, &opts, jobs, &out, |name| {
        bar.set_message(name.to_string());
        bar.inc(1);
    })
    .unwrap_or_else(|e| fail(e));
    bar.finish_and_clear();
    let all: Vec<_> = published(&root, "")
        .into_iter()
        .filter(|p| p.label.contains("T1"))
        .collect();
    let table = sweep::summary(&rows, &all, &sweep::table9(&root));
    let csv_path = out.join(format!("sweep-{policy}.csv"));
    let md_path = out.join(format!("sweep-{policy}.md"));
    let write = |p: &PathBuf, text: &str| {
        std::fs::write(p, text).unwrap_or_else(|e| fail(format!("{}: {e}", p.display())))
    };
    write(&csv_path, &sweep::csv(&rows));
    write(&md_path, &table);
    let wall: f64 = rows.iter().map(|r| r.wall_s).sum();
    println!(
        "{} instances, policy {policy}, {jobs} at a time, {wall:.0} s of replays",
        rows.len()
    );
    println!("{table}");
    println!(
        "per instance: {}; solutions under {}",
        csv_path.display(),
        out.display()
    );
    let infeasible = sweep::infeasible(&rows);
    if !infeasible.is_empty() {
        for r in &infeasible {
            eprintln!("{}: {}", r.instance, r.check.details(3));
        }
        eprintln!(
            "dispatch-sweep: {} of {} solutions infeasible",
            infeasible.len(),
            rows.len()
        );
        std::process::exit(1);
    }
}
