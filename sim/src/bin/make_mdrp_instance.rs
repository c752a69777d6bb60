//! `make-mdrp-instance OUT_DIR [--seed N]`: writes the project's own small MDRP instance
//! (dispatch_sim::mdrp::synthetic) into OUT_DIR, for `dispatchd replay --instance OUT_DIR`.

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "make-mdrp-instance",
    about = "Write a small synthetic MDRP instance"
)]
struct Cli {
    /// Directory to write the instance files into (created if missing).
    out_dir: PathBuf,
    /// Same seed, same instance.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = dispatch_sim::mdrp::synthetic::write(&cli.out_dir, cli.seed) {
        eprintln!("make-mdrp-instance: {}: {e}", cli.out_dir.display());
        std::process::exit(2);
    }
    println!("{}", cli.out_dir.display());
}
