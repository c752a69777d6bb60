//! What every tracking app's payload is parsed into, in the engine's units.

use dispatch_actors::domain::gps::RawFix;

/// A fix as a tracking app reported it: degrees, metres, metres per second, Unix ms.
/// Ranges, times and implied speed are checked later by the same validator as a rider
/// socket's `location` (`dispatch_actors::domain::gps`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackerFix {
    /// The device id the payload itself carries (OsmAnd `id`, Traccar Client
    /// `device_id`). OwnTracks names its device outside the payload (Basic auth, topic).
    pub device_id: Option<String>,
    pub lat: f64,
    pub lon: f64,
    pub ts_ms: f64,
    pub accuracy_m: Option<f64>,
    pub speed_mps: Option<f64>,
    pub heading_deg: Option<f64>,
}

impl TrackerFix {
    /// The fix as the rider socket would have sent it.
    pub fn raw(&self) -> RawFix {
        RawFix {
            lat: Some(self.lat),
            lon: Some(self.lon),
            ts_ms: Some(self.ts_ms),
            accuracy_m: self.accuracy_m,
            speed_mps: self.speed_mps,
            heading_deg: self.heading_deg,
        }
    }
}
