//! Plain domain types and the rules over them. No actors, no I/O: every rule here is
//! tested directly.

pub mod device;
pub mod dispatch;
pub mod escalation;
pub mod geo;
pub mod gps;
pub mod ids;
pub mod ladder;
pub mod merchant;
pub mod offers;
pub mod order;
pub mod rider;
pub mod share;
pub mod zone;

pub use self::device::DeviceId;
pub use self::geo::GeoPoint;
pub use ids::*;
pub use zone::{ZoneId, Zoning};
