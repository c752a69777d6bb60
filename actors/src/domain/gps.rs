//! GPS fix validation (docs/protocol.md, "Location rules").

use super::GeoPoint;

/// A fix as it arrives from a rider: any field may be missing or nonsense.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RawFix {
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub ts_ms: Option<f64>,
    pub accuracy_m: Option<f64>,
    pub speed_mps: Option<f64>,
    pub heading_deg: Option<f64>,
}

/// An accepted fix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpsFix {
    pub point: GeoPoint,
    pub ts_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FixVerdict {
    Accept(GpsFix),
    /// Older than (or as old as) the last accepted fix: ignored silently.
    Ignore,
    Reject(String),
}

impl FixVerdict {
    /// Label for `dispatch_gps_fixes_total{result}`.
    pub fn result_label(&self) -> &'static str {
        match self {
            FixVerdict::Accept(_) => "accepted",
            FixVerdict::Ignore => "out_of_order",
            FixVerdict::Reject(_) => "rejected",
        }
    }
}

pub struct GpsRules {
    pub max_speed_mps: f64,
    pub max_future_ms: u64,
}

impl GpsRules {
    pub fn check(&self, raw: &RawFix, last: Option<&GpsFix>, now_ms: u64) -> FixVerdict {
        let (Some(lat), Some(lon), Some(ts)) = (raw.lat, raw.lon, raw.ts_ms) else {
            return FixVerdict::Reject("lat, lon and ts_ms are required numbers".into());
        };
        let point = match GeoPoint::new(lat, lon) {
            Ok(p) => p,
            Err(e) => return FixVerdict::Reject(e),
        };
        if !ts.is_finite() || !(0.0..=9.0e15).contains(&ts) {
            return FixVerdict::Reject("ts_ms must be a Unix time in milliseconds".into());
        }
        let ts_ms = ts as u64;
        if ts_ms > now_ms + self.max_future_ms {
            return FixVerdict::Reject(format!(
                "ts_ms is {} s in the future",
                (ts_ms - now_ms) / 1000
            ));
        }
        if let Some(last) = last {
            if ts_ms <= last.ts_ms {
                return FixVerdict::Ignore;
            }
            let dt_s = (ts_ms - last.ts_ms) as f64 / 1000.0;
            let speed = last.point.distance_m(&point) / dt_s;
            if speed > self.max_speed_mps {
                return FixVerdict::Reject(format!(
                    "implied speed {speed:.0} m/s exceeds {} m/s",
                    self.max_speed_mps
                ));
            }
        }
        FixVerdict::Accept(GpsFix { point, ts_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn rules() -> GpsRules {
        GpsRules {
            max_speed_mps: 70.0,
            max_future_ms: 30_000,
        }
    }

    fn raw(lat: f64, lon: f64, ts: u64) -> RawFix {
        RawFix {
            lat: Some(lat),
            lon: Some(lon),
            ts_ms: Some(ts as f64),
            ..Default::default()
        }
    }

    #[test]
    fn accepts_a_plain_fix() {
        assert!(matches!(
            rules().check(&raw(31.2, 121.4, NOW), None, NOW),
            FixVerdict::Accept(_)
        ));
    }

    #[test]
    fn rejects_missing_nan_out_of_range_and_future() {
        let r = rules();
        assert!(matches!(
            r.check(&RawFix::default(), None, NOW),
            FixVerdict::Reject(_)
        ));
        assert!(matches!(
            r.check(&raw(f64::NAN, 0.0, NOW), None, NOW),
            FixVerdict::Reject(_)
        ));
        assert!(matches!(
            r.check(&raw(91.0, 0.0, NOW), None, NOW),
            FixVerdict::Reject(_)
        ));
        assert!(matches!(
            r.check(&raw(0.0, 181.0, NOW), None, NOW),
            FixVerdict::Reject(_)
        ));
        assert!(matches!(
            r.check(&raw(0.0, 0.0, NOW + 31_000), None, NOW),
            FixVerdict::Reject(_)
        ));
        assert!(matches!(
            r.check(&raw(0.0, 0.0, NOW + 29_000), None, NOW),
            FixVerdict::Accept(_)
        ));
    }

    #[test]
    fn rejects_teleports_and_ignores_old_fixes() {
        let r = rules();
        let FixVerdict::Accept(first) = r.check(&raw(31.2, 121.4, NOW), None, NOW) else {
            panic!()
        };
        // ~11 km in 10 s
        assert!(matches!(
            r.check(&raw(31.3, 121.4, NOW + 10_000), Some(&first), NOW + 10_000),
            FixVerdict::Reject(_)
        ));
        // ~111 m in 10 s is fine
        assert!(matches!(
            r.check(
                &raw(31.201, 121.4, NOW + 10_000),
                Some(&first),
                NOW + 10_000
            ),
            FixVerdict::Accept(_)
        ));
        assert_eq!(
            r.check(&raw(31.2, 121.4, NOW - 1), Some(&first), NOW),
            FixVerdict::Ignore
        );
        assert_eq!(
            r.check(&raw(31.2, 121.4, NOW), Some(&first), NOW),
            FixVerdict::Ignore
        );
    }
}
