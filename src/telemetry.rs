//! Logs (tracing, JSON when `LOG_FORMAT=json`) and the Prometheus recorder.

use dispatch_actors::domain::escalation::EscalationKind;
use dispatch_actors::domain::offers::OfferCloseReason;
use dispatch_actors::domain::order::OrderStatus;
use dispatch_actors::domain::rider::RiderStatus;
use dispatch_actors::metric_names as m;
use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub fn init_logs() {
    let _ = init_tracing(&crate::otel::OtelSettings::default());
}

/// Logs, and with `otel.endpoint` set, span export (src/otel.rs). Keep the guard until
/// the end of `main`: dropping it sends the spans still queued.
pub fn init_tracing(otel: &crate::otel::OtelSettings) -> Result<crate::otel::OtelGuard, String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{fmt, EnvFilter, Layer};
    // Per-request logs and per-order transitions are debug: a busy city would drown the rest.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tracing_actix_web=warn,dispatch_actors=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json");
    let logs = if json {
        fmt::layer().json().boxed()
    } else {
        fmt::layer().with_ansi(ansi).boxed()
    };
    let registry = tracing_subscriber::registry().with(filter).with(logs);
    let (export, guard) = match crate::otel::layer(otel)? {
        Some((layer, guard)) => (Some(layer), guard),
        None => (None, crate::otel::OtelGuard::off()),
    };
    // Already initialised: tests start many servers in one process.
    let _ = registry.with(export).try_init();
    Ok(guard)
}

/// The process-wide Prometheus recorder (installed once; later calls share it). Every
/// `dispatch_*` metric is described and shown from the first scrape.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0,
            ];
            // The store's write and lag times: finer steps where they live, so a p99 from
            // 10 ms to 2 s reads within a bucket of ~1.5x (a full-name matcher wins over
            // the suffix one).
            let store = [
                0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
                0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
            ];
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .expect("buckets are valid")
                .set_buckets_for_metric(Matcher::Full(m::STORE_WRITE_SECONDS.into()), &store)
                .expect("buckets are valid")
                .set_buckets_for_metric(Matcher::Full(m::STORE_POSITION_LAG_SECONDS.into()), &store)
                .expect("buckets are valid")
                .set_buckets_for_metric(Matcher::Full(m::PLAN_ROUND_SECONDS.into()), &store)
                .expect("buckets are valid")
                .set_buckets_for_metric(Matcher::Full(m::PLAN_OFFER_DELAY_SECONDS.into()), &store)
                .expect("buckets are valid")
                .install_recorder()
                .expect("the Prometheus recorder is installed once");
            describe_metrics();
            register_metrics();
            // Histogram samples wait in the recorder until drained: without a scrape they
            // would pile up for good (about 8 bytes per order per histogram), and the
            // first scrape after a quiet spell would drain them all. Drain every 5 s.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                })
                .expect("the metrics upkeep thread starts");
            handle
        })
        .clone()
}

/// The `record` labels of `dispatch_store_recovered`.
pub const RECOVERED_RECORDS: [&str; 4] = ["orders", "riders", "merchants", "escalations"];

/// HELP text and units, so a scrape documents itself.
fn describe_metrics() {
    describe_counter!(
        m::GPS_FIXES_TOTAL,
        "Rider GPS fixes, by result (accepted, out_of_order, rejected)."
    );
    describe_counter!(
        m::GPS_FIXES_SHED_TOTAL,
        "Rider GPS fixes replaced by a newer one before the rider's actor took them (latest fix wins; never validated)."
    );
    describe_counter!(
        m::TRACKER_FIXES_TOTAL,
        "Fixes from tracking apps (OsmAnd, Traccar Client, OwnTracks), by source and outcome."
    );
    describe_counter!(m::ORDERS_TOTAL, "Orders entering each status.");
    describe_counter!(
        m::WEBHOOK_DELIVERIES_TOTAL,
        "Webhook deliveries by outcome (delivered, retried, dead_lettered, dropped: queue full, evicted: dead letter past the cap)."
    );
    describe_counter!(
        m::OFFERS_TOTAL,
        "Offers sent to riders, and how each ended (outcome)."
    );
    describe_counter!(m::ESCALATIONS_TOTAL, "Escalations opened, by kind.");
    describe_gauge!(m::RIDERS, "Riders in each status.");
    describe_histogram!(
        m::OFFER_LATENCY_SECONDS,
        Unit::Seconds,
        "From an order becoming dispatchable to its first offer."
    );
    describe_histogram!(
        m::ASSIGNMENT_LATENCY_SECONDS,
        Unit::Seconds,
        "From a merchant's accept to a rider's assignment."
    );
    describe_histogram!(
        m::PLAN_ROUND_SECONDS,
        Unit::Seconds,
        "One batch planning round: candidate search and solve (batch policy)."
    );
    describe_histogram!(
        m::PLAN_OFFER_DELAY_SECONDS,
        Unit::Seconds,
        "From an order's due time (or its joining the planner, if it came already due) to the planning round that proposes its rider; 0 when before (batch policy)."
    );
    describe_counter!(
        m::EVENTS_DROPPED_TOTAL,
        "Engine events a slow subscriber missed."
    );
    describe_counter!(
        m::WS_FRAMES_DROPPED_TOTAL,
        "WebSocket frames not delivered, by socket and why."
    );
    describe_counter!(m::MATCHER_QUERIES_TOTAL, "Spatial index queries, by kind.");
    describe_counter!(
        m::RATE_LIMITED_TOTAL,
        "Requests or socket messages refused by a rate limit."
    );
    describe_histogram!(
        m::STORE_BATCH_WRITES,
        Unit::Count,
        "Writes per Redis pipeline (group commit)."
    );
    describe_histogram!(
        m::STORE_WRITE_SECONDS,
        Unit::Seconds,
        "From a write being queued to Redis answering it, by record (position: the flusher's pipeline round trip)."
    );
    describe_histogram!(
        m::STORE_POSITION_LAG_SECONDS,
        Unit::Seconds,
        "From the engine accepting a rider's fix to Redis acknowledging the write that holds it (or a newer fix)."
    );
    describe_gauge!(
        m::STORE_RECOVERED,
        Unit::Count,
        "What the last start-up recovered from the store, by record."
    );
    describe_gauge!(
        m::STORE_RECOVERY_SECONDS,
        Unit::Seconds,
        "How long the last start-up recovery took (store read and actors rebuilt)."
    );
    describe_gauge!(
        m::STORE_PENDING_WRITES,
        Unit::Count,
        "Writes kept while Redis is unreachable, waiting to be flushed."
    );
    describe_counter!(m::STORE_ERRORS_TOTAL, "Redis pipelines that failed.");
    describe_counter!(
        m::STORE_CLUSTER_RENEWALS_TOTAL,
        "Redis Cluster connections opened afresh after nothing sent on them was answered for stall_after."
    );
    describe_counter!(
        m::STORE_POSITIONS_WRITTEN_TOTAL,
        "Rider positions written to Redis."
    );
    describe_counter!(
        m::STORE_EVENTS_DROPPED_TOTAL,
        "Events not appended to the Redis event stream."
    );
    describe_counter!(
        m::MATCHER_WITHHELD_TOTAL,
        "Candidate riders withheld for an order waiting longer."
    );
    describe_gauge!(
        m::ORDERS_WAITING,
        Unit::Count,
        "Orders waiting for a rider."
    );
    describe_gauge!(
        m::ESCALATIONS_IN_MEMORY,
        Unit::Count,
        "Escalations the desk holds in memory (open, and resolved within retention)."
    );
    describe_gauge!(
        m::STORE_ARCHIVED_ORDERS,
        Unit::Count,
        "Final orders the memory store keeps readable (its bounded archive)."
    );
    describe_counter!(
        m::STORE_ORDERS_EVICTED_TOTAL,
        "Final orders the memory store let go (past retention or over its cap)."
    );
    describe_gauge!(
        m::PASSWORD_HASHES_PENDING,
        Unit::Count,
        "Password hashes accepted by the hashing pool and not finished (waiting plus running)."
    );
    describe_counter!(
        m::PASSWORD_HASHES_REFUSED_TOTAL,
        "Sign-ups and logins refused because the password hashing queue was full."
    );
    describe_counter!(
        m::TOKENS_ENDED_TOTAL,
        "Tokens that ended before use, by why (revoked, expired)."
    );
    describe_counter!(
        m::MESH_CALLS_TOTAL,
        "Calls to other nodes, by outcome (answered, timeout, refused, unavailable)."
    );
    describe_counter!(
        m::STORE_FENCED_WRITES_TOTAL,
        "Order writes refused by fencing, by by (node: zone not held here; lease: the lease names another holder)."
    );
    describe_counter!(
        m::MESH_NOTES_TOTAL,
        "One-way messages to other nodes, by outcome (queued, dropped, failed)."
    );
    describe_counter!(
        m::MESH_CALLS_REFUSED_TOTAL,
        "Calls from other nodes refused because this node was handling its limit already."
    );
    describe_counter!(
        m::FLEET_STALE_CLAIMS_TOTAL,
        "Peers' claims to run a rider that the store did not back (a stale copy), dropped."
    );
    describe_counter!(
        m::PEER_CHANGES_DROPPED_TOTAL,
        "Changes for or from other nodes dropped over a bound, by what (fleet, rider_views, riders_elsewhere, escalations, order_notices, …)."
    );
    describe_counter!(
        m::TOKENS_READ_THROUGH_TOTAL,
        "Tokens this node did not hold, found in the store (issued by another node)."
    );
    describe_counter!(
        m::WS_REFUSED_TOTAL,
        "WebSocket upgrades refused before the handshake, by why."
    );
    describe_gauge!(
        m::HUB_ENTRIES,
        Unit::Count,
        "Entries in the socket hub's maps, by map."
    );
    describe_counter!(
        m::SHARE_LINKS_TOTAL,
        "Share links, by event (created, revoked, opened, refused)."
    );
    describe_gauge!(
        m::READY,
        "1 when /readyz would answer 200 at the time of the scrape, else 0."
    );
    describe_gauge!(
        m::CLUSTER_LEASES_HELD,
        Unit::Count,
        "Zone leases this node holds and acts on (several nodes)."
    );
    describe_counter!(
        m::CLUSTER_LEASE_ACQUISITIONS_TOTAL,
        "Zone leases taken, each with a new fencing number."
    );
    describe_counter!(
        m::CLUSTER_LEASE_RELEASES_TOTAL,
        "Zone leases given up: another node should own the zone (drain), or a graceful stop."
    );
    describe_counter!(
        m::CITY_FEED_TOTAL,
        "Other zones' event stream entries read for this node's sockets, by outcome (fed, own, bad, error)."
    );
    describe_counter!(
        m::CLUSTER_LEASE_LOSSES_TOTAL,
        "Zone leases lost, by why (taken: Redis shows it lapsed or another's; unrenewed: no renewal answered in time)."
    );
}

/// A zero sample for every series whose labels are known in advance, so dashboards and
/// alerts see it from the first scrape rather than after the first event. Adding zero
/// (not setting it) leaves alone anything recorded meanwhile.
fn register_metrics() {
    for s in OrderStatus::ALL {
        metrics::counter!(m::ORDERS_TOTAL, "status" => s.as_str()).increment(0);
    }
    let closes = [
        OfferCloseReason::Expired,
        OfferCloseReason::Taken,
        OfferCloseReason::Withdrawn,
        OfferCloseReason::Cancelled,
        OfferCloseReason::Declined,
    ]
    .map(OfferCloseReason::as_str);
    for outcome in ["sent", "refused", "accepted"].into_iter().chain(closes) {
        metrics::counter!(m::OFFERS_TOTAL, "outcome" => outcome).increment(0);
    }
    for k in [
        EscalationKind::MerchantUnresponsive,
        EscalationKind::NoRider,
        EscalationKind::PickupLate,
        EscalationKind::DeliveryLate,
        EscalationKind::RiderSilent,
    ] {
        metrics::counter!(m::ESCALATIONS_TOTAL, "kind" => k.as_str()).increment(0);
    }
    for s in [
        RiderStatus::Offline,
        RiderStatus::Idle,
        RiderStatus::Offered,
        RiderStatus::Busy,
        RiderStatus::Stale,
    ] {
        metrics::gauge!(m::RIDERS, "status" => s.as_str()).increment(0.0);
    }
    for result in ["accepted", "out_of_order", "rejected"] {
        metrics::counter!(m::GPS_FIXES_TOTAL, "result" => result).increment(0);
    }
    for subscriber in ["hub", "webhooks", "share"] {
        metrics::counter!(m::EVENTS_DROPPED_TOTAL, "subscriber" => subscriber).increment(0);
    }
    for outcome in crate::webhooks::DELIVERY_OUTCOMES {
        metrics::counter!(m::WEBHOOK_DELIVERIES_TOTAL, "outcome" => outcome).increment(0);
    }
    for event in ["created", "revoked", "opened", "refused"] {
        metrics::counter!(m::SHARE_LINKS_TOTAL, "event" => event).increment(0);
    }
    for socket in ["rider", "merchant", "track", "dispatch"] {
        for why in ["overflow", "send_timeout"] {
            metrics::counter!(m::WS_FRAMES_DROPPED_TOTAL, "socket" => socket, "why" => why)
                .increment(0);
        }
    }
    metrics::counter!(m::WS_FRAMES_DROPPED_TOTAL, "socket" => "track", "why" => "coalesced")
        .increment(0);
    for kind in ["candidates", "nearby"] {
        metrics::counter!(m::MATCHER_QUERIES_TOTAL, "kind" => kind).increment(0);
    }
    for source in crate::ingest::Source::ALL {
        for outcome in crate::ingest::Outcome::LABELS {
            metrics::counter!(m::TRACKER_FIXES_TOTAL, "source" => source.label(), "outcome" => outcome)
                .increment(0);
        }
    }
    for what in [
        "auth",
        "rider_socket",
        "tracker",
        "login_failures",
        "ip",
        "token",
    ] {
        metrics::counter!(m::RATE_LIMITED_TOTAL, "what" => what).increment(0);
    }
    for why in ["revoked", "expired"] {
        metrics::counter!(m::TOKENS_ENDED_TOTAL, "why" => why).increment(0);
    }
    for outcome in ["answered", "timeout", "refused", "unavailable"] {
        metrics::counter!(m::MESH_CALLS_TOTAL, "outcome" => outcome).increment(0);
    }
    for by in ["node", "lease"] {
        metrics::counter!(m::STORE_FENCED_WRITES_TOTAL, "by" => by).increment(0);
    }
    for outcome in ["queued", "dropped", "failed"] {
        metrics::counter!(m::MESH_NOTES_TOTAL, "outcome" => outcome).increment(0);
    }
    for why in ["ip_cap", "principal_cap", "origin"] {
        metrics::counter!(m::WS_REFUSED_TOTAL, "why" => why).increment(0);
    }
    for name in [
        m::GPS_FIXES_SHED_TOTAL,
        m::STORE_ERRORS_TOTAL,
        m::STORE_CLUSTER_RENEWALS_TOTAL,
        m::STORE_POSITIONS_WRITTEN_TOTAL,
        m::STORE_EVENTS_DROPPED_TOTAL,
        m::MATCHER_WITHHELD_TOTAL,
        m::STORE_ORDERS_EVICTED_TOTAL,
        m::PASSWORD_HASHES_REFUSED_TOTAL,
        m::TOKENS_READ_THROUGH_TOTAL,
        m::MESH_CALLS_REFUSED_TOTAL,
        m::FLEET_STALE_CLAIMS_TOTAL,
        m::CLUSTER_LEASE_ACQUISITIONS_TOTAL,
        m::CLUSTER_LEASE_RELEASES_TOTAL,
    ] {
        metrics::counter!(name).increment(0);
    }
    for what in [
        "fleet",
        "rider_views",
        "riders_elsewhere",
        "escalations",
        "escalations_heard",
        "escalations_elsewhere",
        "order_notices",
        "order_notices_elsewhere",
    ] {
        metrics::counter!(m::PEER_CHANGES_DROPPED_TOTAL, "what" => what).increment(0);
    }
    for outcome in crate::city_feed::OUTCOMES {
        metrics::counter!(m::CITY_FEED_TOTAL, "outcome" => outcome).increment(0);
    }
    for why in ["taken", "unrenewed"] {
        metrics::counter!(m::CLUSTER_LEASE_LOSSES_TOTAL, "why" => why).increment(0);
    }
    for name in [
        m::STORE_PENDING_WRITES,
        m::ORDERS_WAITING,
        m::ESCALATIONS_IN_MEMORY,
        m::STORE_ARCHIVED_ORDERS,
        m::PASSWORD_HASHES_PENDING,
        m::CLUSTER_LEASES_HELD,
    ] {
        metrics::gauge!(name).increment(0.0);
    }
    for map in [
        "merchants",
        "trackers",
        "status_trackers",
        "dashboards",
        "rider_access",
        "order_riders",
    ] {
        metrics::gauge!(m::HUB_ENTRIES, "map" => map).increment(0.0);
    }
    // Histograms have no meaningful zero sample; registering them makes the exporter
    // show their (empty) buckets, `_sum` and `_count`.
    for name in [
        m::OFFER_LATENCY_SECONDS,
        m::ASSIGNMENT_LATENCY_SECONDS,
        m::STORE_BATCH_WRITES,
        m::STORE_POSITION_LAG_SECONDS,
        m::PLAN_ROUND_SECONDS,
        m::PLAN_OFFER_DELAY_SECONDS,
    ] {
        let _ = metrics::histogram!(name);
    }
    for record in [
        "order",
        "rider",
        "merchant",
        "escalation",
        "token",
        "account",
        "device",
        "idempotency",
        "share",
        "event",
        "flush",
        "position",
        "webhook",
        "webhook_delivery",
    ] {
        let _ = metrics::histogram!(m::STORE_WRITE_SECONDS, "record" => record);
    }
    for record in RECOVERED_RECORDS {
        metrics::gauge!(m::STORE_RECOVERED, "record" => record).increment(0.0);
    }
    metrics::gauge!(m::STORE_RECOVERY_SECONDS).increment(0.0);
    metrics::gauge!(m::READY).increment(0.0);
}
