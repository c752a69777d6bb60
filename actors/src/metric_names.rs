//! Metric names, in one place so the exporter, docs and dashboards agree.
//! Rules (docs/protocol.md): `dispatch_` prefix, base units, counters end in `_total`.

pub const GPS_FIXES_TOTAL: &str = "dispatch_gps_fixes_total";
/// Fixes replaced in a rider's latest-fix-wins slot before its actor took them (never
/// validated, so not in `GPS_FIXES_TOTAL`).
pub const GPS_FIXES_SHED_TOTAL: &str = "dispatch_gps_fixes_shed_total";
/// Fixes from tracking apps, by `source` (osmand, traccar_json, owntracks_http,
/// owntracks_mqtt) and `outcome` (accepted, out_of_order, superseded, invalid,
/// unknown_device, rate_limited, dropped, unavailable). Those that reached a rider are in
/// `GPS_FIXES_TOTAL` (or `GPS_FIXES_SHED_TOTAL`) too, like a socket's.
pub const TRACKER_FIXES_TOTAL: &str = "dispatch_tracker_fixes_total";
pub const ORDERS_TOTAL: &str = "dispatch_orders_total";
pub const OFFERS_TOTAL: &str = "dispatch_offers_total";
pub const ESCALATIONS_TOTAL: &str = "dispatch_escalations_total";
pub const RIDERS: &str = "dispatch_riders";
pub const OFFER_LATENCY_SECONDS: &str = "dispatch_offer_latency_seconds";
pub const ASSIGNMENT_LATENCY_SECONDS: &str = "dispatch_assignment_latency_seconds";
pub const EVENTS_DROPPED_TOTAL: &str = "dispatch_events_dropped_total";
pub const WS_FRAMES_DROPPED_TOTAL: &str = "dispatch_ws_frames_dropped_total";
pub const MATCHER_QUERIES_TOTAL: &str = "dispatch_matcher_queries_total";
pub const RATE_LIMITED_TOTAL: &str = "dispatch_rate_limited_total";
/// Writes per Redis pipeline (group commit), a histogram.
pub const STORE_BATCH_WRITES: &str = "dispatch_store_batch_writes";
/// Time from a write being queued to Redis answering it, by `record` (order, rider,
/// merchant, escalation, token, account, device, idempotency, event, flush, webhook,
/// webhook_delivery; `position`: the flusher's pipeline round trip).
pub const STORE_WRITE_SECONDS: &str = "dispatch_store_write_seconds";
/// From the engine accepting a rider's fix to Redis acknowledging the write that holds
/// it (or a newer fix of the rider), a histogram: how far Redis trails the engine.
pub const STORE_POSITION_LAG_SECONDS: &str = "dispatch_store_position_lag_seconds";
/// What the last start-up recovered from the store, by `record` (orders, riders,
/// merchants, escalations), a gauge.
pub const STORE_RECOVERED: &str = "dispatch_store_recovered";
/// How long the last start-up recovery took (reading the store, rebuilding the actors),
/// a gauge.
pub const STORE_RECOVERY_SECONDS: &str = "dispatch_store_recovery_seconds";
/// Writes that failed (Redis unreachable) and wait to be flushed, a gauge.
pub const STORE_PENDING_WRITES: &str = "dispatch_store_pending_writes";
pub const STORE_ERRORS_TOTAL: &str = "dispatch_store_errors_total";
/// Times the Redis Cluster connection answered nothing at all for `stall_after` while
/// requests waited, and was opened afresh.
pub const STORE_CLUSTER_RENEWALS_TOTAL: &str = "dispatch_store_cluster_renewals_total";
pub const STORE_POSITIONS_WRITTEN_TOTAL: &str = "dispatch_store_positions_written_total";
pub const STORE_EVENTS_DROPPED_TOTAL: &str = "dispatch_store_events_dropped_total";
pub const MATCHER_WITHHELD_TOTAL: &str = "dispatch_matcher_withheld_total";
pub const ORDERS_WAITING: &str = "dispatch_orders_waiting";
/// Escalations the desk holds in memory (open, and resolved within retention), a gauge.
pub const ESCALATIONS_IN_MEMORY: &str = "dispatch_escalations_in_memory";
/// Final orders the memory store keeps readable (its bounded archive), a gauge.
pub const STORE_ARCHIVED_ORDERS: &str = "dispatch_store_archived_orders";
/// Final orders the memory store let go (past retention or over its cap).
pub const STORE_ORDERS_EVICTED_TOTAL: &str = "dispatch_store_orders_evicted_total";
/// Entries in each of the server hub's maps (label `map`), a gauge.
/// One batch planning round, wall time: the matcher's candidate search plus the solve.
pub const PLAN_ROUND_SECONDS: &str = "dispatch_plan_round_seconds";
/// From an order's due time (the latest offer that keeps its best rider on time), or from
/// when it joined the planner if it came already due, to the round that proposes its
/// rider; 0 when proposed before it fell due.
pub const PLAN_OFFER_DELAY_SECONDS: &str = "dispatch_plan_offer_delay_seconds";
pub const HUB_ENTRIES: &str = "dispatch_hub_entries";
/// Share links, by `event`: created, revoked, opened (a page or socket served by one),
/// refused (a dead or unknown link was presented).
pub const SHARE_LINKS_TOTAL: &str = "dispatch_share_links_total";
/// 1 when `/readyz` would answer 200 at the moment of the scrape, else 0, a gauge.
pub const READY: &str = "dispatch_ready";

/// Password hashes (sign-ups, logins) accepted by the hashing pool and not finished:
/// waiting plus running, a gauge (bounded by `auth.hash_threads + auth.hash_queue`).
pub const PASSWORD_HASHES_PENDING: &str = "dispatch_password_hashes_pending";
/// Sign-ups and logins refused because the hashing pool's queue was full (503).
pub const PASSWORD_HASHES_REFUSED_TOTAL: &str = "dispatch_password_hashes_refused_total";
/// Tokens revoked by a dispatcher, and tokens found expired, by `why`.
pub const TOKENS_ENDED_TOTAL: &str = "dispatch_tokens_ended_total";
/// Tokens this node did not hold, found in the store (issued by another node).
pub const TOKENS_READ_THROUGH_TOTAL: &str = "dispatch_tokens_read_through_total";
/// WebSocket upgrades refused before the handshake, by `why` (`ip_cap`,
/// `principal_cap`, `origin`).
pub const WS_REFUSED_TOTAL: &str = "dispatch_ws_refused_total";
/// Webhook deliveries by `outcome`: `delivered` (a 2xx answer), `retried` (an attempt
/// failed, another is scheduled), `dead_lettered` (the last attempt failed), `dropped`
/// (the subscription's queue was full: never queued), `evicted` (a dead letter pushed out
/// by the cap).
pub const WEBHOOK_DELIVERIES_TOTAL: &str = "dispatch_webhook_deliveries_total";
/// Zone leases this node holds and acts on (several nodes, docs/cluster.md), a gauge.
pub const CLUSTER_LEASES_HELD: &str = "dispatch_cluster_leases_held";
/// Zone leases taken (a free lease, with a new fencing number).
pub const CLUSTER_LEASE_ACQUISITIONS_TOTAL: &str = "dispatch_cluster_lease_acquisitions_total";
/// Zone leases given up: another node should own the zone now (drain), or a graceful stop.
pub const CLUSTER_LEASE_RELEASES_TOTAL: &str = "dispatch_cluster_lease_releases_total";
/// Zone leases lost, by `why`: `taken` (Redis shows it lapsed or another holder's),
/// `unrenewed` (no renewal answered before it would lapse: the node stops acting first).
pub const CLUSTER_LEASE_LOSSES_TOTAL: &str = "dispatch_cluster_lease_losses_total";

/// Order writes refused by fencing (docs/cluster.md), by `by`: `node` (this node does not
/// hold the order's zone: refused before sending), `lease` (the zone's lease in Redis
/// names another holder or fence: refused by the write's script).
pub const STORE_FENCED_WRITES_TOTAL: &str = "dispatch_store_fenced_writes_total";
/// Calls to other nodes (docs/cluster.md) by `outcome`: `answered`, `timeout`,
/// `refused` (the callee was full, or too many calls wait here), `unavailable` (Redis).
pub const MESH_CALLS_TOTAL: &str = "dispatch_mesh_calls_total";
/// One-way messages to other nodes by `outcome`: `queued`, `dropped` (the send queue was
/// full), `failed` (a batch Redis refused).
pub const MESH_NOTES_TOTAL: &str = "dispatch_mesh_notes_total";
/// Calls from other nodes this node refused because it was handling its limit already.
pub const MESH_CALLS_REFUSED_TOTAL: &str = "dispatch_mesh_calls_refused_total";
/// A peer's claim to run a rider another peer was known to run, that the store did not
/// back (a stale copy of a node that was frozen or cut off): dropped.
pub const FLEET_STALE_CLAIMS_TOTAL: &str = "dispatch_fleet_stale_claims_total";
/// Changes for other nodes or from them dropped over a bound, by `what`: `fleet` (this
/// node's riders' matcher placements waiting for the next flush), `rider_views` (this
/// node's riders' dashboard views waiting for the next flush, or remembered for a new
/// peer), `riders_elsewhere` (another node's rider not kept for snapshots: the hub's map
/// is full, or the hub fell behind the views heard), `escalations` (this node's
/// escalation changes waiting for the next flush, or open ones remembered for a new
/// peer), `escalations_heard` (another node's escalation not kept for lists and
/// snapshots), `escalations_elsewhere` (the hub fell behind the escalations heard),
/// `order_notices` (this node's orders' notices waiting for the next flush),
/// `order_notices_elsewhere` (the hub fell behind the notices heard).
pub const PEER_CHANGES_DROPPED_TOTAL: &str = "dispatch_peer_changes_dropped_total";
/// Entries of other zones' event streams read by this node's city feed (every dashboard
/// shows the whole city, docs/cluster.md), by `outcome`: `fed` (an order of another node,
/// given to the dashboards), `own` (written by this node: its own actors told the hub
/// already), `bad` (not an order event this node can read), `error` (a read Redis did not
/// answer; the zone is read again from the same place).
pub const CITY_FEED_TOTAL: &str = "dispatch_city_feed_total";

/// Every name above: each is described and shown from the first scrape.
pub const ALL: &[&str] = &[
    GPS_FIXES_TOTAL,
    GPS_FIXES_SHED_TOTAL,
    TRACKER_FIXES_TOTAL,
    ORDERS_TOTAL,
    OFFERS_TOTAL,
    ESCALATIONS_TOTAL,
    RIDERS,
    OFFER_LATENCY_SECONDS,
    ASSIGNMENT_LATENCY_SECONDS,
    EVENTS_DROPPED_TOTAL,
    WS_FRAMES_DROPPED_TOTAL,
    MATCHER_QUERIES_TOTAL,
    RATE_LIMITED_TOTAL,
    STORE_BATCH_WRITES,
    STORE_WRITE_SECONDS,
    STORE_POSITION_LAG_SECONDS,
    STORE_RECOVERED,
    STORE_RECOVERY_SECONDS,
    STORE_PENDING_WRITES,
    STORE_ERRORS_TOTAL,
    STORE_CLUSTER_RENEWALS_TOTAL,
    STORE_POSITIONS_WRITTEN_TOTAL,
    STORE_EVENTS_DROPPED_TOTAL,
    MATCHER_WITHHELD_TOTAL,
    ORDERS_WAITING,
    ESCALATIONS_IN_MEMORY,
    STORE_ARCHIVED_ORDERS,
    STORE_ORDERS_EVICTED_TOTAL,
    HUB_ENTRIES,
    PASSWORD_HASHES_PENDING,
    PASSWORD_HASHES_REFUSED_TOTAL,
    TOKENS_ENDED_TOTAL,
    TOKENS_READ_THROUGH_TOTAL,
    WS_REFUSED_TOTAL,
    WEBHOOK_DELIVERIES_TOTAL,
    MESH_CALLS_TOTAL,
    MESH_CALLS_REFUSED_TOTAL,
    STORE_FENCED_WRITES_TOTAL,
    MESH_NOTES_TOTAL,
    FLEET_STALE_CLAIMS_TOTAL,
    PEER_CHANGES_DROPPED_TOTAL,
    CLUSTER_LEASES_HELD,
    CLUSTER_LEASE_ACQUISITIONS_TOTAL,
    CLUSTER_LEASE_RELEASES_TOTAL,
    CLUSTER_LEASE_LOSSES_TOTAL,
    CITY_FEED_TOTAL,
];
