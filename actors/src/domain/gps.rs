//! GPS fix validation (docs/protocol.md, "Location rules").

use super::GeoPoint;

/// A fix as it arrives from a rider: any field may be missing or nonsense.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RawFix {
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub ts_ms: Option<f64>,
    pub accuracy_m: Option<f64>,
    pub speed_mps: Option<f64>,
    pub heading_deg: Option<f64>,
}

/// An accepted fix.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GpsFix {
    pub point: GeoPoint,
    pub ts_ms: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

    /// Each written rule on its own (docs/protocol.md, "Location rules"), over arbitrary
    /// input; cases from `PROPTEST_CASES` (default 256).
    mod each_rule {
        use super::*;
        use proptest::prelude::*;

        const MAX_SPEED: f64 = 70.0;

        fn any_number() -> impl Strategy<Value = f64> {
            prop_oneof![
                4 => any::<f64>(),
                4 => -400.0f64..400.0,
                1 => Just(f64::NAN),
                1 => Just(f64::INFINITY),
                1 => Just(f64::NEG_INFINITY),
            ]
        }

        fn in_range() -> impl Strategy<Value = (f64, f64)> {
            (-90.0f64..=90.0, -180.0f64..=180.0)
        }

        fn last_fix() -> impl Strategy<Value = Option<GpsFix>> {
            prop::option::of((in_range(), 0u64..=NOW + 30_000)).prop_map(|o| {
                o.map(|((lat, lon), ts_ms)| GpsFix {
                    point: GeoPoint::new(lat, lon).unwrap(),
                    ts_ms,
                })
            })
        }

        fn extras() -> impl Strategy<Value = (Option<f64>, Option<f64>, Option<f64>)> {
            (
                prop::option::of(any_number()),
                prop::option::of(any_number()),
                prop::option::of(any_number()),
            )
        }

        proptest! {
            /// Range: a lat or lon that is not finite, or outside -90..90 / -180..180, is
            /// rejected whatever else the fix says and whatever came before.
            #[test]
            fn out_of_range_or_not_finite_is_rejected(
                (lat, lon) in in_range(),
                bad_lat in any::<bool>(),
                bad in prop_oneof![
                    Just(f64::NAN),
                    Just(f64::INFINITY),
                    Just(f64::NEG_INFINITY),
                    (180.000_001f64..1e300),
                    (-1e300f64..-180.000_001),
                    (90.000_001f64..180.0),
                    (-180.0f64..-90.000_001),
                ],
                ts in 0u64..NOW,
                last in last_fix(),
            ) {
                // `bad` as lat (everything above is out of -90..90), or as lon when it is
                // also out of -180..180.
                let (lat, lon) = if bad_lat || bad.abs() <= 180.0 { (bad, lon) } else { (lat, bad) };
                let v = rules().check(&raw_f(lat, lon, ts as f64), last.as_ref(), NOW);
                prop_assert!(matches!(v, FixVerdict::Reject(_)), "{:?}", v);
            }

            /// Required fields: without lat, lon or ts_ms the fix is rejected.
            #[test]
            fn a_missing_field_is_rejected(
                (lat, lon) in in_range(), ts in 0u64..NOW, which in 0usize..3, last in last_fix(),
            ) {
                let mut raw = raw_f(lat, lon, ts as f64);
                match which {
                    0 => raw.lat = None,
                    1 => raw.lon = None,
                    _ => raw.ts_ms = None,
                }
                let v = rules().check(&raw, last.as_ref(), NOW);
                prop_assert!(matches!(v, FixVerdict::Reject(_)), "{:?}", v);
            }

            /// Timestamps: one that is not a whole Unix time in ms (negative, NaN, past
            /// 9e15) or more than `max_future_ms` ahead is rejected; up to that is
            /// accepted from a first fix.
            #[test]
            fn timestamps_follow_the_future_rule(
                (lat, lon) in in_range(),
                ts in prop_oneof![any_number(), (0u64..NOW + 60_000).prop_map(|t| t as f64)],
            ) {
                let v = rules().check(&raw_f(lat, lon, ts), None, NOW);
                let valid = ts.is_finite() && (0.0..=9.0e15).contains(&ts);
                if valid && ts as u64 <= NOW + 30_000 {
                    prop_assert!(matches!(v, FixVerdict::Accept(f) if f.ts_ms == ts as u64), "{:?}", v);
                } else {
                    prop_assert!(matches!(v, FixVerdict::Reject(_)), "{} {:?}", ts, v);
                }
            }

            /// Accuracy, speed and heading are information only: whatever they hold (NaN,
            /// negative, huge, missing), the verdict is the one without them.
            #[test]
            fn accuracy_speed_and_heading_never_change_the_verdict(
                (lat, lon) in in_range(),
                ts in 0u64..NOW + 60_000,
                (accuracy_m, speed_mps, heading_deg) in extras(),
                last in last_fix(),
            ) {
                let plain = raw_f(lat, lon, ts as f64);
                let full = RawFix { accuracy_m, speed_mps, heading_deg, ..plain };
                prop_assert_eq!(
                    rules().check(&full, last.as_ref(), NOW),
                    rules().check(&plain, last.as_ref(), NOW)
                );
            }

            /// Out of order: a fix not newer than the last accepted one is ignored, even
            /// one that would be a teleport.
            #[test]
            fn an_old_fix_is_ignored_wherever_it_is(
                (lat, lon) in in_range(), last in last_fix(), back in 0u64..100_000,
            ) {
                let Some(last) = last else { return Ok(()) };
                let ts = last.ts_ms.saturating_sub(back);
                let v = rules().check(&raw_f(lat, lon, ts as f64), Some(&last), NOW);
                prop_assert_eq!(v, FixVerdict::Ignore);
            }

            /// Max speed: from the last accepted fix, a fix is accepted exactly when the
            /// implied speed (great-circle distance over elapsed time) is within the limit.
            #[test]
            fn implied_speed_decides_between_accept_and_reject(
                (lat, lon) in in_range(),
                bearing in 0.0f64..360.0,
                dt_ms in 1u64..600_000,
                speed_mps in 0.0f64..2.0 * MAX_SPEED,
            ) {
                let last = GpsFix { point: GeoPoint::new(lat, lon).unwrap(), ts_ms: NOW - dt_ms };
                let to = last.point.destination(bearing, speed_mps * dt_ms as f64 / 1000.0);
                let implied = last.point.distance_m(&to) / (dt_ms as f64 / 1000.0);
                let v = rules().check(&raw_f(to.lat(), to.lon(), NOW as f64), Some(&last), NOW);
                if implied <= MAX_SPEED {
                    prop_assert!(matches!(v, FixVerdict::Accept(_)), "{} m/s: {:?}", implied, v);
                } else {
                    prop_assert!(matches!(v, FixVerdict::Reject(_)), "{} m/s: {:?}", implied, v);
                }
            }

            /// Latest fix wins (docs/architecture.md, "GPS intake"): a rider within the
            /// speed limit is never rejected, and neither is it when any of its fixes in
            /// between were shed (the speed over a longer interval is never above the
            /// highest over its parts).
            #[test]
            fn a_lawful_rider_is_accepted_even_with_fixes_shed(
                (lat, lon) in (-60.0f64..60.0, -170.0f64..170.0),
                legs in prop::collection::vec((0.0f64..360.0, 1u64..20_000, 0.0f64..0.99 * MAX_SPEED), 1..40),
                shed in prop::collection::vec(any::<bool>(), 40),
            ) {
                let mut at = GeoPoint::new(lat, lon).unwrap();
                let mut ts = NOW - 1_000_000;
                let mut path = vec![(at, ts)];
                for (bearing, dt_ms, v) in legs {
                    at = at.destination(bearing, v * dt_ms as f64 / 1000.0);
                    ts += dt_ms;
                    path.push((at, ts));
                }
                for keep_all in [true, false] {
                    let mut last: Option<GpsFix> = None;
                    for (i, (p, t)) in path.iter().enumerate() {
                        if !keep_all && i > 0 && i < path.len() - 1 && shed[i % shed.len()] {
                            continue;
                        }
                        let v = rules().check(&raw_f(p.lat(), p.lon(), *t as f64), last.as_ref(), NOW);
                        let FixVerdict::Accept(fix) = v else {
                            return Err(TestCaseError::fail(format!("fix {i} of {path:?}: {v:?}")));
                        };
                        last = Some(fix);
                    }
                }
            }
        }

        fn raw_f(lat: f64, lon: f64, ts: f64) -> RawFix {
            RawFix {
                lat: Some(lat),
                lon: Some(lon),
                ts_ms: Some(ts),
                ..Default::default()
            }
        }
    }
}
