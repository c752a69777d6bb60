//! Metric names, in one place so the exporter, docs and dashboards agree.
//! Rules (PROTOCOL.md): `dispatch_` prefix, base units, counters end in `_total`.

pub const GPS_FIXES_TOTAL: &str = "dispatch_gps_fixes_total";
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
