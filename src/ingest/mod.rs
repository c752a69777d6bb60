//! Fixes from tracking apps (docs/protocol.md, "Tracking apps"): a rider may report
//! through Traccar Client, OsmAnd or OwnTracks instead of the rider socket.
//!
//! - `osmand`, `traccar_json`, `owntracks`: each app's payload, parsed by a plain module
//!   into one [`fix::TrackerFix`] (engine units: `units` converts speeds, `timestamp`
//!   reads times), each tested on the app's documented samples;
//! - `devices`: device id → rider, the registry a rider's devices are registered in;
//! - `intake`: the one way in, shared with the rider socket (same validator, rate limit,
//!   silence timers, latest-fix-wins slot), counting every outcome;
//! - `mqtt`: OwnTracks' MQTT transport (a subscriber on the configured broker).
//!
//! The HTTP ends are routes: `routes::osmand` (its own listener, `ingest.osmand_bind`),
//! `routes::owntracks` and `routes::devices`.

pub mod devices;
pub mod fix;
pub mod intake;
pub mod mqtt;
pub mod osmand;
pub mod owntracks;
pub mod timestamp;
pub mod traccar_json;
pub mod units;

pub use intake::{Intake, Outcome, Source};
