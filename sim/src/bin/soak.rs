//! `dispatch-soak [--hours 24] [--orders-per-s 0.5] …`: the demo city on the engine with the
//! memory store for many hours of engine time under a paused clock; prints the process's
//! memory and the sizes it can see along the way (dispatch_sim::soak, docs/performance.md).

use clap::Parser;
use dispatch_sim::soak::{self, Sample, SoakOptions};

#[derive(Parser)]
#[command(
    name = "dispatch-soak",
    about = "Run the demo city for simulated hours and watch memory"
)]
struct Cli {
    /// Engine hours to simulate.
    #[arg(long, default_value_t = 24.0)]
    hours: f64,
    /// Sample every this many simulated hours after the first.
    #[arg(long, default_value_t = 3.0)]
    every_h: f64,
    /// Steady order rate (orders per engine second).
    #[arg(long, default_value_t = 0.5)]
    orders_per_s: f64,
    #[arg(long, default_value_t = 600)]
    riders: usize,
    #[arg(long, default_value_t = 40)]
    merchants: usize,
    /// Seconds between a simulated rider's fixes.
    #[arg(long, default_value_t = 10.0)]
    fix_interval_s: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the demo's kitchen every rider declines: each of its orders is offered to
    /// every rider in reach, which costs time and memory that grow with the fleet.
    #[arg(long)]
    avoided_kitchen: bool,
    /// Seconds final orders and resolved escalations stay in memory (`retention.final_s`).
    #[arg(long, default_value_t = 3600.0)]
    retention_s: f64,
}

fn main() {
    let cli = Cli::parse();
    let opts = SoakOptions {
        hours: cli.hours,
        sample_every_h: cli.every_h,
        orders_per_s: cli.orders_per_s,
        riders: cli.riders,
        merchants: cli.merchants,
        fix_interval_s: cli.fix_interval_s,
        seed: cli.seed,
        avoided_kitchen: cli.avoided_kitchen,
        retention_s: cli.retention_s,
    };
    println!(
        "soak: {} h at {} orders/s, {} riders, {} merchants, fixes every {} s, avoided kitchen: {}, retention {} s (memory store, paused clock)",
        opts.hours, opts.orders_per_s, opts.riders, opts.merchants, opts.fix_interval_s, opts.avoided_kitchen, opts.retention_s
    );
    println!("{}", Sample::header());
    let report = match soak::run(&opts, |s| println!("{}", s.row())) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dispatch-soak: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "rss end / first hour: {:.2}; orders assigned by the dispatcher: {}",
        report.rss_ratio(),
        report.assigned_by_hand
    );
}
