//! Building and running the application: engine, hub, HTTP server, demo city, graceful
//! shutdown. `Application::build` binds first (port 0 allowed) so callers learn the port.

use crate::auth::AuthRegistry;
use crate::cluster_node::ClusterNode;
use crate::hub::Hub;
use crate::idempotency::Idempotency;
use crate::ingest::devices::DeviceRegistry;
use crate::ingest::{mqtt, Intake};
use crate::password::PasswordPool;
use crate::ratelimit::{quota, KeyedLimiter};
use crate::settings::{Settings, DEV_DISPATCHER_TOKEN};
use crate::webhooks::Webhooks;
use crate::{errors, routes, telemetry};
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use dispatch_actors::store::redis::RedisStore;
use dispatch_actors::store::{MemoryStore, SnapshotPart, Store};
use dispatch_actors::{Clock, Engine};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Kept here too: callers (tests, tools) have always named it `startup::AppState`.
pub use crate::state::AppState;

pub struct Application {
    port: u16,
    server: Server,
    /// The ops listener (`server.ops_bind`), if configured: its port and server.
    ops: Option<(u16, Server)>,
    /// The OsmAnd / Traccar Client listener (`ingest.osmand_bind`), if configured.
    osmand: Option<(u16, Server)>,
    state: web::Data<AppState>,
    /// This node's part in a cluster (`[cluster]`), once joined.
    cluster: Arc<tokio::sync::Mutex<Option<ClusterNode>>>,
}

impl Application {
    /// Starts the engine and binds the server. Must run inside an actix System.
    pub async fn build(settings: Settings) -> std::io::Result<Application> {
        let metrics = telemetry::metrics_handle();
        let (store, redis): (Arc<dyn Store>, Option<RedisStore>) =
            if settings.store.backend == "redis" {
                let mut cfg = settings.store.redis_config();
                if settings.cluster.enabled {
                    cfg.node_id = settings.cluster.node_id();
                }
                let r = RedisStore::open(cfg).map_err(|e| std::io::Error::other(e.to_string()))?;
                (Arc::new(r.clone()), Some(r))
            } else {
                let limits = settings.store.memory_limits(&settings.retention);
                (Arc::new(MemoryStore::with_limits(limits)), None)
            };
        let clock = Clock::system();
        let engine = Engine::start(settings.engine_config(), store.clone(), clock);
        let (shutdown, _) = watch::channel(false);
        // Subscribed to the bus before recovery publishes anything.
        let webhooks = Webhooks::start(
            settings.webhooks.clone(),
            store.clone(),
            clock,
            engine.subscribe(),
            shutdown.subscribe(),
        )
        .map_err(std::io::Error::other)?;
        let hub = Hub::new();
        hub.start(
            &engine,
            Duration::from_millis(settings.dashboard.update_interval_ms),
            shutdown.subscribe(),
        );
        if settings.auth.dispatcher_token == DEV_DISPATCHER_TOKEN {
            tracing::warn!("auth.dispatcher_token is the development default; set DISPATCH_AUTH__DISPATCHER_TOKEN in production");
        }
        if settings.server.allowed_origins.iter().any(|o| o == "*") {
            tracing::warn!(
                "server.allowed_origins has \"*\": WebSockets accept any browser origin"
            );
        }
        let limits = &settings.rate_limit;
        let intake = Arc::new(Intake::new(
            engine.clone(),
            // After a restart on Redis, devices come back with the rest (`recover`). A
            // node of a cluster asks the store for each: any node registers and revokes.
            {
                let devices = DeviceRegistry::new(store.clone(), redis.is_none());
                if settings.cluster.enabled {
                    devices.read_through()
                } else {
                    devices
                }
            },
            // A tracker's fixes count against the same allowance as a rider socket's.
            KeyedLimiter::new(quota(
                limits.rider_fixes_per_10s,
                Duration::from_secs(10),
                limits.rider_fix_burst,
            )),
            settings.ingest.sets_online,
        ));
        let sockets = crate::sockets::Sockets::new(
            settings.server.max_sockets_per_ip,
            settings.server.max_sockets_per_principal,
        );
        let shares =
            crate::share::ShareLinks::new(settings.share.clone(), store.clone(), sockets.clone());
        shares.start(&engine, shutdown.subscribe());
        let state = web::Data::new(AppState {
            engine: engine.clone(),
            auth: AuthRegistry::new(
                settings.auth.dispatcher_token.clone(),
                settings.auth.token_ttl(),
                PasswordPool::new(settings.auth.hash_pool()),
            )
            .with_store(store),
            intake: intake.clone(),
            webhooks,
            hub,
            idempotency: Idempotency::default(),
            auth_limiter: KeyedLimiter::new(quota(
                settings.rate_limit.auth_per_ip_per_minute,
                Duration::from_secs(60),
                settings.rate_limit.auth_per_ip_per_minute,
            )),
            ip_limiter: KeyedLimiter::new(quota(
                settings.rate_limit.per_ip_per_s,
                Duration::from_secs(1),
                settings.rate_limit.per_ip_burst,
            )),
            holder_limiter: KeyedLimiter::new(quota(
                settings.rate_limit.per_token_per_s,
                Duration::from_secs(1),
                settings.rate_limit.per_token_burst,
            )),
            login_guard: crate::login_guard::LoginGuard::new(
                settings.auth.login_failures_free,
                crate::settings::seconds(settings.auth.login_delay_s),
                crate::settings::seconds(settings.auth.login_delay_max_s),
            ),
            sockets: sockets.clone(),
            draining: AtomicBool::new(false),
            shares,
            shutdown,
            metrics,
            settings: settings.clone(),
        });
        let listener = listen(&settings.server.bind, settings.server.listen_backlog)?;
        let addr = listener.local_addr()?;
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::QueryConfig::default().error_handler(errors::query_error))
                .app_data(web::PathConfig::default().error_handler(errors::path_error))
                .wrap(actix_web::middleware::from_fn(crate::recovery_gate::gate))
                .wrap(actix_web::middleware::from_fn(crate::request_limits::limit))
                .wrap(tracing_actix_web::TracingLogger::<
                    crate::access_log::RedactedSpans,
                >::new())
                .configure(routes::configure)
        })
        // Frames go out at once: with Nagle's algorithm on, a frame that follows one the
        // client has not acknowledged waits for its delayed ACK (~40 ms).
        .on_connect(|conn, _| {
            if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(%e, "TCP_NODELAY not set");
                }
            }
        })
        .listen(listener)?
        .workers(settings.server.workers.max(1))
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout_s)
        .run();
        tracing::info!("listening on http://{addr}");
        let ops = match settings.server.ops_bind.as_str() {
            "" => None,
            bind => Some(ops_server(bind, state.clone(), &settings)?),
        };
        let osmand = match settings.ingest.osmand_bind.as_str() {
            "" => None,
            bind => Some(osmand_server(bind, state.clone(), &settings)?),
        };
        if !settings.ingest.mqtt_url.is_empty() {
            mqtt::spawn(
                &settings.ingest.mqtt_url,
                settings.ingest.mqtt_queue,
                intake,
                state.shutdown.subscribe(),
            )
            .map_err(std::io::Error::other)?;
        }
        let cluster = Arc::new(tokio::sync::Mutex::new(None));
        match redis {
            Some(r) => {
                r.spawn_event_log(engine.subscribe());
                // Before recovery reads the tokens, so no revocation falls between the two.
                actix_web::rt::spawn(crate::revocations::follow(state.clone()));
                actix_web::rt::spawn(recover(
                    r.clone(),
                    state.clone(),
                    addr,
                    settings.cluster.enabled,
                ));
                if settings.cluster.enabled {
                    actix_web::rt::spawn(join_cluster(
                        settings.clone(),
                        r,
                        state.engine.clone(),
                        state.hub.clone(),
                        cluster.clone(),
                    ));
                }
            }
            None => {
                if settings.demo.enabled {
                    start_demo(&state, addr);
                }
            }
        }
        Ok(Application {
            port: addr.port(),
            server,
            ops,
            osmand,
            state,
            cluster,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The ops listener's port, when `server.ops_bind` is set.
    pub fn ops_port(&self) -> Option<u16> {
        self.ops.as_ref().map(|(port, _)| *port)
    }

    /// The OsmAnd listener's port, when `ingest.osmand_bind` is set.
    pub fn osmand_port(&self) -> Option<u16> {
        self.osmand.as_ref().map(|(port, _)| *port)
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until SIGTERM or ctrl-c, then drains: readyz turns 503, sockets get a close
    /// frame, in-flight requests finish (bounded by `server.shutdown_timeout_s`).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let ops = self.ops.map(|(_, server)| server);
        let ops_handle = ops.as_ref().map(Server::handle);
        let osmand = self.osmand.map(|(_, server)| server);
        let osmand_handle = osmand.as_ref().map(Server::handle);
        let state = self.state.clone();
        actix_web::rt::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: draining");
            drain(&state);
            if let Some(h) = osmand_handle {
                h.stop(true).await;
            }
            handle.stop(true).await;
            // Probes answer (readyz 503) until the main server has drained.
            if let Some(h) = ops_handle {
                h.stop(true).await;
            }
        });
        if let Some(server) = ops {
            actix_web::rt::spawn(server);
        }
        if let Some(server) = osmand {
            actix_web::rt::spawn(server);
        }
        let served = self.server.await;
        // The hub's router and dashboard tick stop with the shutdown signal.
        self.state.hub.join().await;
        // Writes nobody waited for (offers, timer steps, rider views, events) are still
        // queued for the store: give them a moment to land.
        if !self
            .state
            .engine
            .store()
            .flush(Duration::from_secs(5))
            .await
        {
            tracing::warn!("store: queued writes not flushed before exit");
        }
        // What this node held is in the store now: its zones may move at once.
        if let Some(node) = self.cluster.lock().await.take() {
            node.leave().await;
        }
        served
    }
}

/// The ops listener: `/healthz`, `/readyz`, `/metrics` on one worker thread of its own, so
/// a probe is scheduled by the kernel beside the busy main workers instead of queueing
/// behind their sockets.
fn ops_server(
    bind: &str,
    state: web::Data<AppState>,
    settings: &Settings,
) -> std::io::Result<(u16, Server)> {
    let listener = listen(bind, 128)?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(routes::configure_ops)
    })
    .listen(listener)?
    .workers(1)
    .disable_signals()
    .shutdown_timeout(settings.server.shutdown_timeout_s)
    .run();
    tracing::info!("ops listener (healthz, readyz, metrics) on port {port}");
    Ok((port, server))
}

/// The OsmAnd / Traccar Client listener: tracking apps report here, each request a fix
/// (`routes::osmand`). Its own port, as the apps expect (Traccar's is 5055).
fn osmand_server(
    bind: &str,
    state: web::Data<AppState>,
    settings: &Settings,
) -> std::io::Result<(u16, Server)> {
    let listener = listen(bind, settings.server.listen_backlog)?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(routes::osmand::configure)
    })
    .listen(listener)?
    .workers(1)
    .disable_signals()
    .shutdown_timeout(settings.server.shutdown_timeout_s)
    .run();
    tracing::info!("osmand listener (OsmAnd, Traccar Client) on port {port}");
    Ok((port, server))
}

/// Joins the other nodes once recovery has read the merchants back (docs/cluster.md),
/// retrying while Redis is away; then lists every merchant's zone, so that some node
/// takes each.
async fn join_cluster(
    settings: Settings,
    redis: RedisStore,
    engine: dispatch_actors::Engine,
    hub: Arc<Hub>,
    slot: Arc<tokio::sync::Mutex<Option<ClusterNode>>>,
) {
    while redis.recovering() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let node = loop {
        match ClusterNode::start(&settings, &redis, &engine, &hub).await {
            Ok(node) => break node,
            Err(e) => {
                tracing::warn!(error = %e, "cluster: not joined yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let zoning = node.zoning;
    let zones: Vec<_> = engine
        .merchants()
        .await
        .iter()
        .map(|m| zoning.zone_of(m.location))
        .collect();
    if let Err(e) = redis.leases().add_zones(&zones).await {
        tracing::warn!(error = %e, "cluster: merchants' zones not listed");
    }
    *slot.lock().await = Some(node);
}

/// Rebuilds the engine from Redis (waiting for it if it is away); readyz stays 503 and
/// state changes answer 503 until this is done. The snapshot is read on a thread of its
/// own and arrives in parts: riders are rebuilt chunk by chunk while the rest is read. A
/// node of a cluster reads back no orders and no riders: orders come with the zones it
/// takes, riders with their sockets (docs/cluster.md).
async fn recover(
    redis: RedisStore,
    state: web::Data<AppState>,
    addr: std::net::SocketAddr,
    clustered: bool,
) {
    let started = std::time::Instant::now();
    let mut parts = redis.stream_snapshot();
    let (mut tokens, mut devices) = (0, 0);
    let mut head = loop {
        match parts.recv().await {
            Some(SnapshotPart::Head(head)) => break head,
            Some(SnapshotPart::Tokens(t)) => tokens += state.auth.restore(t, Vec::new()).0,
            Some(SnapshotPart::Devices(d)) => devices += state.intake.devices.restore(d),
            _ => incomplete_recovery(),
        }
    };
    let head_ms = started.elapsed().as_millis() as u64;
    let had_city = !head.merchants.is_empty();
    let (_, accounts) = state
        .auth
        .restore(Vec::new(), std::mem::take(&mut head.accounts));
    if clustered {
        head.orders.clear();
    }
    let (mut riders, orders) = state.engine.recover_head(head).await;
    loop {
        match parts.recv().await {
            Some(SnapshotPart::Riders(_)) if clustered => {}
            Some(SnapshotPart::Riders(chunk)) => state.engine.recover_riders(&mut riders, chunk),
            Some(SnapshotPart::Tokens(t)) => tokens += state.auth.restore(t, Vec::new()).0,
            Some(SnapshotPart::Devices(d)) => devices += state.intake.devices.restore(d),
            Some(SnapshotPart::Done) => break,
            Some(SnapshotPart::Head(_)) | None => incomplete_recovery(),
        }
    }
    let n = state.engine.recover_orders(riders, orders);
    state.intake.devices.mark_complete();
    redis.mark_recovered();
    let took = started.elapsed();
    for (record, count) in telemetry::RECOVERED_RECORDS.into_iter().zip([
        n.orders,
        n.riders,
        n.merchants,
        n.escalations,
    ]) {
        metrics::gauge!(dispatch_actors::metric_names::STORE_RECOVERED, "record" => record)
            .set(count as f64);
    }
    metrics::gauge!(dispatch_actors::metric_names::STORE_RECOVERY_SECONDS).set(took.as_secs_f64());
    tracing::info!(
        orders = n.orders,
        riders = n.riders,
        merchants = n.merchants,
        open_offers = n.offers,
        timers = n.timers,
        escalations = n.escalations,
        open_escalations = n.open_escalations,
        tokens,
        devices,
        accounts,
        head_ms,
        took_ms = took.as_millis() as u64,
        "recovered from redis"
    );
    if state.settings.demo.enabled {
        if had_city {
            tracing::info!("demo: the stored city is back; not seeding another");
        } else {
            start_demo(&state, addr);
        }
    }
}

/// The snapshot reader stopped before the end (it retries Redis errors itself, so this is
/// a bug): serving a partial city would be worse than not starting.
fn incomplete_recovery() -> ! {
    tracing::error!("recovery: the snapshot reader stopped before the end; exiting");
    std::process::exit(1);
}

/// The demo city (dispatch-sim) on this server's engine; its links use this server's tokens.
fn start_demo(state: &web::Data<AppState>, addr: std::net::SocketAddr) {
    struct Host(web::Data<AppState>, std::net::SocketAddr);
    impl dispatch_sim::demo::DemoHost for Host {
        fn rider_token(&self, rider: &dispatch_actors::domain::RiderId) -> String {
            self.0
                .auth
                .issue(crate::auth::Principal::Rider(rider.clone()))
        }
        fn customer_token(&self, customer: &dispatch_actors::domain::CustomerId) -> String {
            self.0
                .auth
                .issue(crate::auth::Principal::Customer(customer.clone()))
        }
        fn base_url(&self) -> String {
            format!("http://{}", self.1)
        }
        fn dispatcher_token(&self) -> String {
            self.0.settings.auth.dispatcher_token.clone()
        }
    }
    dispatch_sim::demo::start(
        state.engine.clone(),
        state.settings.demo.clone(),
        std::sync::Arc::new(Host(state.clone(), addr)),
    );
}

/// Stops taking new work: readyz 503, every socket closed with a close frame.
pub fn drain(state: &AppState) {
    state.draining.store(true, Ordering::SeqCst);
    let _ = state.shutdown.send(true);
    state.hub.close_all();
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Binds `addr` with a listen backlog of `backlog` (std's `TcpListener::bind` uses 128,
/// which drops handshakes when thousands of riders reconnect at once).
fn listen(addr: &str, backlog: u32) -> std::io::Result<TcpListener> {
    use std::net::ToSocketAddrs;
    let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("no address in {addr}"),
        )
    })?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog.clamp(1, i32::MAX as u32) as i32)?;
    Ok(socket.into())
}
