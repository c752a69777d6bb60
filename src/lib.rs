//! dispatchd, the server: configuration, HTTP routes, WebSocket sessions, auth. The engine
//! itself lives in the `dispatch-actors` crate; the demo city and the replay in `dispatch-sim`.

pub mod access_log;
pub mod api_doc;
pub mod auth;
pub mod city_feed;
pub mod cluster_node;
pub mod elsewhere;
pub mod errors;
pub mod extract;
pub mod hub;
pub mod idempotency;
pub mod ingest;
pub mod login_guard;
pub mod otel;
pub mod password;
pub mod ratelimit;
pub mod recovery_gate;
pub mod request_limits;
pub mod revocations;
pub mod riders_elsewhere;
pub mod routes;
pub mod settings;
pub mod share;
pub mod sockets;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod webhooks;
pub mod ws;
