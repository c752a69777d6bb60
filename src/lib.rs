//! dispatchd, the server: configuration, HTTP routes, WebSocket sessions, auth, the demo
//! city. The engine itself lives in the `dispatch-actors` crate.

pub mod auth;
pub mod demo;
pub mod errors;
pub mod extract;
pub mod hub;
pub mod idempotency;
pub mod ratelimit;
pub mod replay;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod ws;
