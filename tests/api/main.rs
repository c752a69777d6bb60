//! Integration tests against PROTOCOL.md: each test starts its own server on a free port
//! and talks to it over real HTTP and WebSockets, with short timers.

// Shared with tests/redis; each crate uses only part of it.
#[allow(dead_code, unused_imports)]
#[path = "../support/mod.rs"]
mod support;

mod helpers;

mod assign;
mod authz;
mod bad_input;
mod escalations;
mod gps_burst;
mod happy_path;
mod idempotency;
mod idempotency_reserve;
mod limits;
mod metrics_catalogue;
mod offers;
mod openapi;
mod ops;
mod ops_kit;
mod otlp;
mod owasp;
mod reconnect;
mod server_defects;
mod share_links;
mod socket_frames;
mod sockets;
mod supervision;
mod tokens;
mod tracking;
mod tracking_mqtt;
mod transitions;
mod webhooks;
