//! `dispatchd` (same as `dispatchd serve`): runs the engine and its HTTP/WebSocket server.
//! `dispatchd replay --instance DIR`: replays one MDRP benchmark instance (dispatch-sim) and
//! checks the solution it wrote; exit status 1 when the solution breaks a rule.

use clap::{Parser, Subcommand};
use dispatch_actors::config::Policy;
use dispatchd::settings::Settings;
use dispatchd::startup::Application;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "dispatchd",
    version,
    about = "Real-time dispatch engine for food delivery"
)]
struct Cli {
    /// Configuration file (default: ./config.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine and serve HTTP and WebSockets (the default).
    Serve,
    /// Replay one Grubhub MDRP instance through the engine under a paused clock, write the
    /// solution files, check them against the benchmark's rules (exit status 1 if
    /// infeasible) and compare the metrics with the published results.
    Replay {
        /// Instance directory (…/mdrplib/instances/<name>).
        #[arg(long)]
        instance: PathBuf,
        /// Where to write the three solution files (default: a new temporary directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replay only what happens before this instance minute.
        #[arg(long)]
        until_minute: Option<u64>,
        /// How orders find riders: `nearest` or `batch` (default: `dispatch.policy`).
        #[arg(long, value_parser = parse_policy)]
        policy: Option<Policy>,
    },
}

/// mimalloc instead of glibc malloc: the engine allocates many small, short-lived
/// messages, and glibc's free lists cost a quarter of a busy replay's time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            dispatchd::telemetry::init_logs();
            eprintln!("dispatchd: {e}");
            std::process::exit(2);
        }
    };
    // Held to the end of main: dropping it sends the spans still queued for export.
    let _traces = match dispatchd::telemetry::init_tracing(&settings.otel) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("dispatchd: {e}");
            std::process::exit(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => actix_web::rt::System::new().block_on(async move {
            let app = Application::build(settings).await?;
            app.run_until_stopped().await
        }),
        Command::Replay {
            instance,
            out,
            until_minute,
            policy,
        } => {
            let opts = dispatch_sim::replay::ReplayOptions {
                until_minute,
                policy: policy.unwrap_or(settings.dispatch.policy),
                no_late_commitment: !settings.dispatch.late_commitment,
                no_bundles: settings.dispatch.max_bundle <= 1,
                no_next_job: settings.dispatch.next_job_s <= 0.0,
            };
            replay(&instance, out, &opts)
        }
    }
}

fn parse_policy(s: &str) -> Result<Policy, String> {
    Policy::try_from(s.to_string())
}

fn replay(
    dir: &Path,
    out: Option<PathBuf>,
    opts: &dispatch_sim::replay::ReplayOptions,
) -> std::io::Result<()> {
    use dispatch_sim::replay;
    let fail = |e: String| -> std::io::Result<()> {
        eprintln!("dispatchd replay: {e}");
        std::process::exit(2);
    };
    let inst = match replay::Instance::load(dir) {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let outcome = match replay::run(&inst, opts) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let out = out.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "dispatchd-replay-{}-{}",
            inst.name,
            std::process::id()
        ))
    });
    outcome.solution.write(&out)?;
    let published = replay::published(&replay::mdrplib_root(dir), &inst.name);
    println!("{}", outcome.summary());
    println!("policy: {:?}", opts.policy);
    if let Some(m) = opts.until_minute {
        println!("(cut at minute {m}: orders placed and shifts before it)");
    }
    println!();
    print!("{}", replay::report_table(&outcome.metrics, &published));
    println!();
    println!("solution files: {}", out.display());
    // The files as written, against the (cut) instance the metrics are over.
    let written = match replay::Solution::read(&out) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let report = dispatch_sim::mdrp::check::check(&outcome.instance, &written);
    println!("feasibility: {}", report.details(5));
    if !report.is_feasible() {
        std::process::exit(1);
    }
    Ok(())
}
