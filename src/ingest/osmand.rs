//! The OsmAnd protocol as Traccar Client and OsmAnd's online tracking send it: fields in
//! the query string of a GET or POST, or in a form body (docs/protocol.md, "Tracking
//! apps"). Field names and units follow Traccar's documentation of the protocol
//! (https://www.traccar.org/osmand/) and its decoder (OsmAndProtocolDecoder in
//! traccar/traccar): `id` (or `deviceid`), `lat`, `lon` (or `location=lat,lon`),
//! `timestamp`, `speed` in knots, `bearing` (or `heading`) in degrees, `accuracy` in
//! metres; `altitude`, `batt`, `hdop` and anything else are read past.

use super::fix::TrackerFix;
use super::timestamp::osmand_ts_ms;
use super::units::knots_to_mps;

/// One request: the fields of its query string, then those of its form body (Traccar
/// Client sends them in either).
pub fn parse_request(query: &str, body: &[u8]) -> Result<TrackerFix, String> {
    let body = std::str::from_utf8(body).map_err(|_| "the form body is not UTF-8")?;
    let mut fields = pairs(query)?;
    fields.extend(pairs(body)?);
    parse_fields(&fields)
}

/// Parses an `application/x-www-form-urlencoded` string (a query string or a form body).
pub fn parse_urlencoded(s: &str) -> Result<TrackerFix, String> {
    parse_fields(&pairs(s)?)
}

fn pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    serde_urlencoded::from_str(s).map_err(|e| format!("unreadable fields: {e}"))
}

/// The fields of one report; a field given twice counts with its last value.
pub fn parse_fields(pairs: &[(String, String)]) -> Result<TrackerFix, String> {
    let mut device_id = None;
    let (mut lat, mut lon, mut ts_ms) = (None, None, None);
    let mut fix = TrackerFix::default();
    for (key, value) in pairs {
        let value = value.trim();
        match key.as_str() {
            "id" | "deviceid" => device_id = Some(value.to_string()),
            "lat" => lat = Some(number(key, value)?),
            "lon" => lon = Some(number(key, value)?),
            "location" => {
                let (a, b) = value
                    .split_once(',')
                    .ok_or("location must be \"lat,lon\"")?;
                lat = Some(number("location", a.trim())?);
                lon = Some(number("location", b.trim())?);
            }
            "timestamp" => ts_ms = Some(osmand_ts_ms(value)?),
            "speed" => fix.speed_mps = Some(knots_to_mps(number(key, value)?)),
            "bearing" | "heading" => fix.heading_deg = Some(number(key, value)?),
            "accuracy" => fix.accuracy_m = Some(number(key, value)?),
            _ => {}
        }
    }
    fix.device_id = Some(
        device_id
            .filter(|d| !d.is_empty())
            .ok_or("id is required")?,
    );
    fix.lat = lat.ok_or("lat is required")?;
    fix.lon = lon.ok_or("lon is required")?;
    fix.ts_ms = ts_ms.ok_or("timestamp is required")?;
    Ok(fix)
}

fn number(key: &str, value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{key} must be a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> Result<TrackerFix, String> {
        parse_urlencoded(q)
    }

    /// Requests from Traccar's own tests of its OsmAnd decoder (with a longer id, and a
    /// timestamp added where the sample had none).
    #[test]
    fn documented_sample_requests_parse() {
        let f = query("id=902064abcdefghijklmnop&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z&hdop=6.0&altitude=224.0&speed=0.0").unwrap();
        assert_eq!(f.device_id.as_deref(), Some("902064abcdefghijklmnop"));
        assert_eq!((f.lat, f.lon), (42.06288, -88.23412));
        assert_eq!(f.ts_ms, 1_453_920_947_000.0);
        assert_eq!(f.speed_mps, Some(0.0));

        let f = query("id=123456&timestamp=1377177267&lat=60.0&lon=30.0&speed=0.0&bearing=0.0&altitude=0&hdop=0.0").unwrap();
        assert_eq!((f.lat, f.lon, f.ts_ms), (60.0, 30.0, 1_377_177_267_000.0));
        assert_eq!(f.heading_deg, Some(0.0));

        let f = query("lat=60.0&lon=30.0&speed=0.0&heading=90.0&vacc=0&hacc=0&altitude=0&deviceid=123456&timestamp=1442068686579").unwrap();
        assert_eq!(f.device_id.as_deref(), Some("123456"));
        assert_eq!((f.heading_deg, f.ts_ms), (Some(90.0), 1_442_068_686_579.0));

        let f = query("id=123456&timestamp=1377177267&location=60.0,30.0").unwrap();
        assert_eq!((f.lat, f.lon), (60.0, 30.0));

        let f = query("lat=49.60688&lon=6.15788&timestamp=2014-06-04+09%3A10%3A11&altitude=384.7&speed=0.0&id=353861053849681").unwrap();
        assert_eq!(f.ts_ms, 1_401_873_011_000.0);
    }

    #[test]
    fn traccar_client_fields_are_converted_to_engine_units() {
        // Traccar Client (Android) sends these fields; speed is in knots.
        let f = query("id=dev-0123456789abcdefghij&timestamp=1700000000&lat=31.2304&lon=121.4737&speed=19.4384&bearing=270.5&altitude=12&accuracy=4.8&batt=87.0").unwrap();
        assert!(
            (f.speed_mps.unwrap() - 10.0).abs() < 1e-3,
            "{:?}",
            f.speed_mps
        );
        assert_eq!(f.heading_deg, Some(270.5));
        assert_eq!(f.accuracy_m, Some(4.8));
        assert_eq!(f.ts_ms, 1_700_000_000_000.0);
        let raw = f.raw();
        assert_eq!((raw.lat, raw.lon), (Some(31.2304), Some(121.4737)));
    }

    #[test]
    fn missing_or_unreadable_fields_say_which() {
        let err = |q: &str| query(q).unwrap_err();
        assert_eq!(err("lat=1&lon=2&timestamp=1"), "id is required");
        assert_eq!(err("id=&lat=1&lon=2&timestamp=1"), "id is required");
        assert_eq!(err("id=x&lon=2&timestamp=1"), "lat is required");
        assert_eq!(err("id=x&lat=1&lon=2"), "timestamp is required");
        assert_eq!(
            err("id=x&lat=north&lon=2&timestamp=1"),
            "lat must be a number"
        );
        assert_eq!(
            err("id=x&lat=NaN&lon=2&timestamp=1"),
            "lat must be a number"
        );
        assert_eq!(
            err("id=x&lat=1&lon=2&timestamp=1&speed=fast"),
            "speed must be a number"
        );
        assert!(err("id=x&lat=1&lon=2&timestamp=yesterday").contains("ISO 8601"));
        assert_eq!(
            err("id=x&location=12&timestamp=1"),
            "location must be \"lat,lon\""
        );
    }

    #[test]
    fn fields_may_come_in_the_query_or_the_form_body() {
        let f = parse_request(
            "id=dev-0123456789abcdefghij",
            b"lat=1.5&lon=2.5&timestamp=1700000000",
        )
        .unwrap();
        assert_eq!((f.lat, f.lon), (1.5, 2.5));
        let f = parse_request("", b"id=d&lat=1&lon=2&timestamp=1700000000&speed=1").unwrap();
        assert_eq!(f.device_id.as_deref(), Some("d"));
        assert!(parse_request("", &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn out_of_range_values_are_left_to_the_validator() {
        // The socket's validator judges ranges, so both paths give the same answer.
        let f = query("id=x&lat=95&lon=2&timestamp=1").unwrap();
        assert_eq!(f.lat, 95.0);
    }
}
