//! dispatch-actors: the dispatchd engine without any HTTP in front of it.
//!
//! Plain, unit-tested logic lives in [`domain`], [`matcher`], [`outbox`], [`fix_slot`],
//! [`plan`] and [`store`]; the actors in [`actors`] are thin shells that route messages,
//! hold timers and call into that logic. [`Engine`] is the facade the server (and tests) drive.

pub mod actors;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod fix_slot;
pub mod matcher;
pub mod mesh;
pub mod metric_names;
pub mod outbox;
pub mod plan;
pub mod protocol;
pub mod store;
pub mod waiting;

pub use actors::engine::{Engine, Zones};
pub use clock::Clock;
pub use config::EngineConfig;
pub use error::EngineError;
