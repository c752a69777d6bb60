//! Logs (tracing, JSON when `LOG_FORMAT=json`) and the Prometheus recorder.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub fn init_logs() {
    use tracing_subscriber::{fmt, EnvFilter};
    // Per-request logs and per-order transitions are debug: a busy city would drown the rest.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tracing_actix_web=warn,dispatch_actors=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json");
    let result = if json {
        fmt().with_env_filter(filter).json().try_init()
    } else {
        fmt().with_env_filter(filter).with_ansi(ansi).try_init()
    };
    let _ = result; // already initialised (tests start many servers in one process)
}

/// The process-wide Prometheus recorder (installed once; later calls share it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .expect("buckets are valid")
                .install_recorder()
                .expect("the Prometheus recorder is installed once")
        })
        .clone()
}
