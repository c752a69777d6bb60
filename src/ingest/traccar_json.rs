//! Traccar Client's JSON body (version 9 and later), the native format of the background
//! location SDK it is built on, as documented at https://www.traccar.org/osmand/:
//! `{"device_id": …, "location": {"timestamp": ISO 8601, "coords": {"latitude",
//! "longitude", "speed" (m/s), "heading" (degrees), "accuracy" (m), …}, …}}`. The SDK
//! reports an unknown speed or heading as -1: those are left out.

use super::fix::TrackerFix;
use super::timestamp::iso_ts_ms;
use serde::Deserialize;

#[derive(Deserialize)]
struct Body {
    device_id: String,
    location: Location,
}

#[derive(Deserialize)]
struct Location {
    timestamp: String,
    coords: Coords,
}

#[derive(Deserialize)]
struct Coords {
    latitude: f64,
    longitude: f64,
    speed: Option<f64>,
    heading: Option<f64>,
    accuracy: Option<f64>,
}

pub fn parse(body: &[u8]) -> Result<TrackerFix, String> {
    let b: Body =
        serde_json::from_slice(body).map_err(|e| format!("invalid Traccar JSON body: {e}"))?;
    let known = |v: Option<f64>| v.filter(|v| *v >= 0.0);
    Ok(TrackerFix {
        device_id: Some(b.device_id),
        lat: b.location.coords.latitude,
        lon: b.location.coords.longitude,
        ts_ms: iso_ts_ms(&b.location.timestamp)?,
        accuracy_m: known(b.location.coords.accuracy),
        speed_mps: known(b.location.coords.speed),
        heading_deg: known(b.location.coords.heading),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The samples of Traccar's own tests of its decoder (OsmAndProtocolDecoderTest in
    /// traccar/traccar).
    #[test]
    fn documented_samples_parse() {
        let f = parse(br#"{"location":{"timestamp":"2025-06-15T13:45:12.862Z","coords":{"latitude":37.4219983,"longitude":-122.084,"accuracy":5,"speed":0,"heading":-1,"altitude":5},"is_moving":false,"odometer":0,"event":"motionchange","battery":{"level":1,"is_charging":false},"activity":{"type":"still"},"extras":{},"_":"&id=48241179&lat=37.4219983&lon=-122.084&timestamp=2025-06-15T13:45:12.862Z&"},"device_id":"48241179"}"#).unwrap();
        assert_eq!(f.device_id.as_deref(), Some("48241179"));
        assert_eq!((f.lat, f.lon), (37.4219983, -122.084));
        assert_eq!(f.ts_ms, 1_749_995_112_862.0);
        assert_eq!((f.accuracy_m, f.speed_mps), (Some(5.0), Some(0.0)));
        assert_eq!(f.heading_deg, None, "-1 means unknown");

        let f = parse(br#"{"location":{"event":"motionchange","is_moving":false,"uuid":"0e9a2473-a9a7-4c00-997b-fb97d2154e75","timestamp":"2021-07-21T08:06:34.444Z","odometer":0,"coords":{"latitude":-6.1148096,"longitude":106.6837015,"accuracy":3.8,"speed":18.67,"speed_accuracy":0.26,"heading":63,"heading_accuracy":0.28,"altitude":35.7,"altitude_accuracy":3.8},"activity":{"type":"still","confidence":100},"battery":{"is_charging":false,"level":0.79},"extras":{}},"device_id":"8737767034"}"#).unwrap();
        assert_eq!(f.speed_mps, Some(18.67), "already m/s");
        assert_eq!(f.heading_deg, Some(63.0));

        let f = parse(br#"{"location":{"extras":{},"mock":true,"coords":{"speed_accuracy":-1,"speed":-1,"longitude":-122.406417,"ellipsoidal_altitude":0,"floor":null,"heading_accuracy":-1,"latitude":37.785834000000001,"accuracy":5,"altitude_accuracy":-1,"altitude":0,"heading":-1},"is_moving":false,"age":188,"odometer":0,"uuid":"2FB04C65-99CF-42AB-8DD3-EBCB4B108BF8","event":"motionchange","battery":{"level":-1,"is_charging":false},"activity":{"type":"unknown","confidence":100},"timestamp":"2025-05-09T04:11:30.579Z"},"device_id":"658765"}"#).unwrap();
        assert_eq!((f.speed_mps, f.heading_deg), (None, None));
    }

    #[test]
    fn missing_or_wrong_fields_say_which() {
        let e = parse(br#"{"location":{"timestamp":"2025-06-15T13:45:12Z","coords":{"latitude":1,"longitude":2}}}"#).unwrap_err();
        assert!(e.contains("device_id"), "{e}");
        let e = parse(br#"{"device_id":"x","location":{"timestamp":"2025-06-15T13:45:12Z","coords":{"longitude":2}}}"#).unwrap_err();
        assert!(e.contains("latitude"), "{e}");
        let e = parse(br#"{"device_id":"x","location":{"timestamp":"noon","coords":{"latitude":1,"longitude":2}}}"#).unwrap_err();
        assert!(e.contains("ISO 8601"), "{e}");
        assert!(parse(b"not json").is_err());
    }
}
