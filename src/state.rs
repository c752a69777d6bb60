//! What every handler shares: the engine, tokens, the socket hub, settings, idempotency
//! bookkeeping, rate limits, the tracking-app intake and the shutdown signal. Built once by
//! [`crate::startup::Application::build`] and handed to actix as `web::Data<AppState>`.

use crate::auth::AuthRegistry;
use crate::hub::Hub;
use crate::idempotency::Idempotency;
use crate::ingest::Intake;
use crate::ratelimit::KeyedLimiter;
use crate::settings::Settings;
use crate::sockets::Sockets;
use dispatch_actors::Engine;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::sync::watch;

pub struct AppState {
    pub engine: Engine,
    pub auth: AuthRegistry,
    pub hub: Arc<Hub>,
    pub settings: Settings,
    pub idempotency: Idempotency,
    /// Logins and registrations per client IP.
    pub auth_limiter: KeyedLimiter<IpAddr>,
    /// Every request per client IP, and per token holder (src/request_limits.rs).
    pub ip_limiter: KeyedLimiter<IpAddr>,
    pub holder_limiter: KeyedLimiter<String>,
    /// A growing wait after failed logins, per username and per IP.
    pub login_guard: crate::login_guard::LoginGuard,
    /// Open WebSockets per IP and per holder (caps; revocation closes them).
    pub sockets: Arc<Sockets>,
    /// Fixes from tracking apps, and the registry of their devices.
    pub intake: Arc<Intake>,
    /// Webhook subscriptions and their deliveries.
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// Set when shutdown begins: readyz answers 503 from then on.
    pub draining: AtomicBool,
    /// Flips to true once at shutdown; sockets and the hub's tasks watch it.
    pub shutdown: watch::Sender<bool>,
    pub metrics: PrometheusHandle,
    /// Share links: settings, checks, and closing the sockets of a link that dies.
    pub shares: Arc<crate::share::ShareLinks>,
}
