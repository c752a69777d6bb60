//! OwnTracks' JSON (https://owntracks.org/booklet/tech/json/), over HTTP or MQTT. Only
//! `_type: "location"` carries a fix: `lat`, `lon`, `tst` (Unix seconds), optional `acc`
//! (m), `vel` (km/h), `cog` (degrees). Every other `_type` (lwt, transition, waypoint, …)
//! is accepted and ignored. Over MQTT the app publishes to `owntracks/<user>/<device>`.

use super::fix::TrackerFix;
use super::units::kmh_to_mps;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(tag = "_type")]
enum Message {
    #[serde(rename = "location")]
    Location(Location),
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Location {
    lat: f64,
    lon: f64,
    tst: f64,
    acc: Option<f64>,
    vel: Option<f64>,
    cog: Option<f64>,
}

/// The fix of a `location` message; `None` for any other type.
pub fn parse(body: &[u8]) -> Result<Option<TrackerFix>, String> {
    let m: Message =
        serde_json::from_slice(body).map_err(|e| format!("invalid OwnTracks JSON: {e}"))?;
    let Message::Location(l) = m else {
        return Ok(None);
    };
    Ok(Some(TrackerFix {
        device_id: None,
        lat: l.lat,
        lon: l.lon,
        ts_ms: l.tst * 1000.0,
        accuracy_m: l.acc,
        speed_mps: l.vel.map(kmh_to_mps),
        heading_deg: l.cog,
    }))
}

/// The `<user>` and `<device>` of a location topic `owntracks/<user>/<device>`; None for
/// any other topic (`…/event`, `…/cmd`, …).
pub fn topic_parts(topic: &str) -> Option<(&str, &str)> {
    let mut parts = topic.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("owntracks"), Some(user), Some(device), None)
            if !user.is_empty() && !device.is_empty() =>
        {
            Some((user, device))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The location example of the OwnTracks booklet (values filled in where it shows
    /// placeholders), and the minimal one from its Traccar page.
    #[test]
    fn documented_location_samples_parse() {
        let f = parse(br#"{"_type":"location","acc":75,"alt":13,"batt":80,"cog":270,"lat":51.5072,"lon":-0.1276,"rad":100,"t":"u","tid":"YY","tst":1376715317,"vac":10,"vel":54,"p":101.2,"conn":"w"}"#)
            .unwrap()
            .unwrap();
        assert_eq!((f.lat, f.lon), (51.5072, -0.1276));
        assert_eq!(f.ts_ms, 1_376_715_317_000.0);
        assert_eq!(f.accuracy_m, Some(75.0));
        assert_eq!(f.heading_deg, Some(270.0));
        assert!(
            (f.speed_mps.unwrap() - 15.0).abs() < 1e-9,
            "54 km/h is 15 m/s"
        );
        assert_eq!(f.device_id, None);

        let f = parse(
            br#"{"lon":2.29513,"lat":48.85833,"_type":"location","tst":1497476456, "tid":"JJ"}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!((f.lat, f.lon, f.speed_mps), (48.85833, 2.29513, None));
    }

    #[test]
    fn other_types_are_accepted_and_carry_no_fix() {
        for other in [
            r#"{"_type":"lwt","tst":1376715317}"#,
            r#"{"_type":"transition","wtst":1425042603,"lat":12.34,"lon":44.5,"tst":1427634603,"acc":130,"tid":"JP","event":"enter","desc":"my Indian restaurant","t":"b"}"#,
            r#"{"_type":"status"}"#,
        ] {
            assert_eq!(parse(other.as_bytes()), Ok(None), "{other}");
        }
    }

    #[test]
    fn a_broken_location_says_what_is_wrong() {
        let e = parse(br#"{"_type":"location","lon":2,"tst":1}"#).unwrap_err();
        assert!(e.contains("lat"), "{e}");
        let e = parse(br#"{"_type":"location","lat":"x","lon":2,"tst":1}"#).unwrap_err();
        assert!(e.contains("invalid"), "{e}");
        assert!(parse(br#"{"lat":1}"#).is_err(), "no _type");
        assert!(parse(b"[]").is_err());
    }

    #[test]
    fn location_topics_name_user_and_device() {
        assert_eq!(topic_parts("owntracks/jane/phone"), Some(("jane", "phone")));
        assert_eq!(topic_parts("owntracks/jane/phone/event"), None);
        assert_eq!(topic_parts("owntracks/jane"), None);
        assert_eq!(topic_parts("owntracks//phone"), None);
        assert_eq!(topic_parts("other/jane/phone"), None);
    }
}
