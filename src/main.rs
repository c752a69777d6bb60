//! `dispatchd` (same as `dispatchd serve`): runs the engine and its HTTP/WebSocket server.

use clap::{Parser, Subcommand};
use dispatchd::settings::Settings;
use dispatchd::startup::Application;
use std::path::PathBuf;

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
}

fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    dispatchd::telemetry::init_logs();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
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
    }
}
