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

    /// The rules as docs/protocol.md ("Location rules") writes them, checked against the
    /// validator on arbitrary input: missing, NaN, infinite, out of range, future, out of
    /// order, too fast, and everything near those edges.
    mod written_rules {
        use super::*;
        use proptest::prelude::*;

        fn number() -> impl Strategy<Value = Option<f64>> {
            prop_oneof![
                1 => Just(None),
                1 => Just(Some(f64::NAN)),
                1 => Just(Some(f64::INFINITY)),
                1 => Just(Some(-f64::INFINITY)),
                6 => (-200.0f64..200.0).prop_map(Some),
                2 => prop::sample::select(vec![-180.0, -90.0, 0.0, 90.0, 180.0, 90.0001, -180.0001])
                    .prop_map(Some),
            ]
        }

        fn ts() -> impl Strategy<Value = Option<f64>> {
            prop_oneof![
                1 => Just(None),
                1 => Just(Some(f64::NAN)),
                1 => Just(Some(-1.0)),
                1 => Just(Some(1.0e16)),
                8 => (-120_000i64..120_000).prop_map(|d| Some((NOW as i64 + d) as f64)),
            ]
        }

        fn oracle(raw: &RawFix, last: Option<&GpsFix>, now: u64) -> &'static str {
            let (Some(lat), Some(lon), Some(ts)) = (raw.lat, raw.lon, raw.ts_ms) else {
                return "reject";
            };
            let finite = lat.is_finite() && lon.is_finite() && ts.is_finite();
            if !finite || lat.abs() > 90.0 || lon.abs() > 180.0 || !(0.0..=9.0e15).contains(&ts) {
                return "reject";
            }
            let ts = ts as u64;
            if ts > now + 30_000 {
                return "reject";
            }
            match last {
                Some(l) if ts <= l.ts_ms => "ignore",
                Some(l) => {
                    let p = GeoPoint::new(lat, lon).unwrap();
                    let speed = l.point.distance_m(&p) / ((ts - l.ts_ms) as f64 / 1000.0);
                    if speed > 70.0 {
                        "reject"
                    } else {
                        "accept"
                    }
                }
                None => "accept",
            }
        }

        proptest! {
            #[test]
            fn the_validator_follows_the_written_rules(
                lat in number(),
                lon in number(),
                ts_ms in ts(),
                last in prop::option::of((-1.0f64..1.0, -1.0f64..1.0, -60_000i64..60_000)),
            ) {
                let raw = RawFix { lat, lon, ts_ms, ..Default::default() };
                let last = last.map(|(dlat, dlon, dt)| GpsFix {
                    point: GeoPoint::new(31.0 + dlat, 121.0 + dlon).unwrap(),
                    ts_ms: (NOW as i64 + dt) as u64,
                });
                let got = rules().check(&raw, last.as_ref(), NOW);
                let want = oracle(&raw, last.as_ref(), NOW);
                prop_assert_eq!(got.result_label(), match want {
                    "accept" => "accepted",
                    "ignore" => "out_of_order",
                    _ => "rejected",
                }, "{:?} after {:?}", raw, last);
                if let FixVerdict::Accept(fix) = got {
                    prop_assert_eq!(fix.ts_ms, ts_ms.unwrap() as u64);
                    prop_assert_eq!((fix.point.lat(), fix.point.lon()), (lat.unwrap(), lon.unwrap()));
                }
            }
        }
    }
}
