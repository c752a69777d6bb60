//! Times as tracking apps send them, to Unix milliseconds: OsmAnd's `timestamp` (Unix
//! seconds, Unix milliseconds, or ISO 8601) and Traccar Client's JSON (ISO 8601).

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// OsmAnd's `timestamp`. A whole number below 2^31 is seconds, anything larger
/// milliseconds: the same rule Traccar's own decoder uses (OsmAndProtocolDecoder in
/// traccar/traccar), so an app that works with Traccar works here. Otherwise ISO 8601
/// (RFC 3339, e.g. `2016-01-27T18:55:47Z`), or `2014-06-04 09:10:11` taken as UTC.
pub fn osmand_ts_ms(s: &str) -> Result<f64, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        if n < 0 {
            return Err("timestamp must not be negative".into());
        }
        return Ok(if n < i64::from(i32::MAX) {
            n as f64 * 1000.0
        } else {
            n as f64
        });
    }
    iso_ts_ms(s).or_else(|e| {
        let plain = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        PrimitiveDateTime::parse(s, plain)
            .map(|t| unix_ms(t.assume_utc()))
            .map_err(|_| e)
    })
}

/// An ISO 8601 time with its offset (RFC 3339), e.g. `2025-06-15T13:45:12.862Z`.
pub fn iso_ts_ms(s: &str) -> Result<f64, String> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map(unix_ms)
        .map_err(|_| {
            format!("{s:?} is not a time: use Unix seconds, Unix milliseconds or ISO 8601")
        })
}

fn unix_ms(t: OffsetDateTime) -> f64 {
    (t.unix_timestamp_nanos() / 1_000_000) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_milliseconds_are_told_apart_as_traccar_does() {
        // Samples from Traccar's OsmAnd decoder tests.
        assert_eq!(osmand_ts_ms("1377177267"), Ok(1_377_177_267_000.0));
        assert_eq!(osmand_ts_ms("1442068686579"), Ok(1_442_068_686_579.0));
        assert!(osmand_ts_ms("-5").is_err());
    }

    #[test]
    fn iso_8601_with_an_offset_or_as_plain_utc() {
        assert_eq!(
            osmand_ts_ms("2016-01-27T18:55:47Z"),
            Ok(1_453_920_947_000.0)
        );
        assert_eq!(
            iso_ts_ms("2025-06-15T13:45:12.862Z"),
            Ok(1_749_995_112_862.0)
        );
        assert_eq!(
            iso_ts_ms("2025-06-15T15:45:12.862+02:00"),
            Ok(1_749_995_112_862.0)
        );
        assert_eq!(osmand_ts_ms("2014-06-04 09:10:11"), Ok(1_401_873_011_000.0));
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        for bad in ["", "soon", "12.5", "2016-13-01T00:00:00Z", "1e9"] {
            let err = osmand_ts_ms(bad).unwrap_err();
            assert!(
                err.contains("ISO 8601") || err.contains("negative"),
                "{bad}: {err}"
            );
        }
    }
}
