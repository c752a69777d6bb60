//! dispatch-sim: simulations that drive the dispatchd engine (`dispatch-actors`) the way
//! its clients would, without any HTTP in between.
//!
//! - [`demo`]: the demo city a first `cargo run` shows (simulated riders, merchants, orders).
//! - [`mdrp`]: the Grubhub MDRP benchmark's files and metrics, and a small instance of our own.
//! - [`replay`]: an MDRP instance through the engine under tokio's paused clock
//!   (`dispatchd replay`).
//! - [`soak`]: the demo city for hours of engine time under the paused clock, watching memory
//!   (`dispatch-soak`).

pub mod demo;
pub mod mdrp;
pub mod replay;
pub mod soak;
pub mod sweep;
