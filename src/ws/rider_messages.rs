//! What the rider app sends (docs/protocol.md, "Rider → server"), as a type: the source of
//! the `RiderMessage` JSON Schema (src/api_doc/socket_frames.rs). The socket itself reads
//! messages with [`super::rider::parse`], which answers each kind of mistake with its own
//! error code and hands a location's numbers to the GPS validator as they are; the tests
//! below hold the two together.

use dispatch_actors::domain::{OfferId, OrderId};
use serde::Deserialize;
use utoipa::ToSchema;

/// One message from the rider app: a text frame holding one JSON object with `type`.
/// Fields not listed are ignored.
// Read by serde only in the tests below, which hold it to the socket's parser.
#[allow(dead_code)]
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RiderMessage {
    /// A GPS fix. Out of range, more than `gps.max_future_ms` ahead or implying a speed
    /// over `gps.max_speed_mps`: answered `invalid_location` and not stored.
    Location {
        #[schema(minimum = -90, maximum = 90)]
        lat: f64,
        #[schema(minimum = -180, maximum = 180)]
        lon: f64,
        /// When the fix was taken, Unix ms.
        ts_ms: u64,
        accuracy_m: Option<f64>,
        speed_mps: Option<f64>,
        heading_deg: Option<f64>,
    },
    /// Going online (offers may come) or offline.
    Status {
        status: OnlineStatus,
    },
    /// When the rider's shift ends, Unix ms; absent or null: open-ended.
    Shift {
        #[serde(default)]
        end_ms: Option<u64>,
    },
    Accept {
        offer_id: OfferId,
    },
    Decline {
        offer_id: OfferId,
        #[serde(default)]
        reason: Option<String>,
    },
    PickedUp {
        order_id: OrderId,
    },
    Delivered {
        order_id: OrderId,
    },
    /// The delivery failed after pickup (food returned).
    Failed {
        order_id: OrderId,
        reason: String,
    },
    /// Hands back an assigned order before pickup (counts as a decline).
    Release {
        order_id: OrderId,
    },
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnlineStatus {
    Online,
    Offline,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::rider::parse;
    use dispatch_actors::protocol::RiderCommand;

    /// The message's kind, as the type reads it and as the socket's parser reads it.
    fn kind_of_type(m: &RiderMessage) -> &'static str {
        match m {
            RiderMessage::Location { .. } => "location",
            RiderMessage::Status { .. } => "status",
            RiderMessage::Shift { .. } => "shift",
            RiderMessage::Accept { .. } => "accept",
            RiderMessage::Decline { .. } => "decline",
            RiderMessage::PickedUp { .. } => "picked_up",
            RiderMessage::Delivered { .. } => "delivered",
            RiderMessage::Failed { .. } => "failed",
            RiderMessage::Release { .. } => "release",
        }
    }

    fn kind_of_command(c: &RiderCommand) -> &'static str {
        match c {
            RiderCommand::Location(_) => "location",
            RiderCommand::SetOnline(_) => "status",
            RiderCommand::Shift { .. } => "shift",
            RiderCommand::Accept { .. } => "accept",
            RiderCommand::Decline { .. } => "decline",
            RiderCommand::PickedUp { .. } => "picked_up",
            RiderCommand::Delivered { .. } => "delivered",
            RiderCommand::Failed { .. } => "failed",
            RiderCommand::Release { .. } => "release",
        }
    }

    #[test]
    fn every_message_the_type_takes_the_socket_takes_as_the_same_kind() {
        for text in [
            r#"{"type":"location","lat":31.2,"lon":121.4,"ts_ms":1700000000000}"#,
            r#"{"type":"location","lat":31.2,"lon":121.4,"ts_ms":5,"accuracy_m":5,"speed_mps":4.5,"heading_deg":90}"#,
            r#"{"type":"status","status":"online"}"#,
            r#"{"type":"status","status":"offline"}"#,
            r#"{"type":"shift","end_ms":1700000000000}"#,
            r#"{"type":"shift","end_ms":null}"#,
            r#"{"type":"shift"}"#,
            r#"{"type":"accept","offer_id":"f_1"}"#,
            r#"{"type":"decline","offer_id":"f_1","reason":"too far"}"#,
            r#"{"type":"decline","offer_id":"f_1"}"#,
            r#"{"type":"picked_up","order_id":"o_1"}"#,
            r#"{"type":"delivered","order_id":"o_1"}"#,
            r#"{"type":"failed","order_id":"o_1","reason":"nobody home"}"#,
            r#"{"type":"release","order_id":"o_1"}"#,
            r#"{"type":"release","order_id":"o_1","extra":true}"#,
        ] {
            let typed: RiderMessage = serde_json::from_str(text).expect(text);
            let parsed = parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert_eq!(kind_of_type(&typed), kind_of_command(&parsed), "{text}");
        }
    }

    #[test]
    fn what_the_type_refuses_the_socket_refuses() {
        for text in [
            "not json",
            r#"["location"]"#,
            r#"{"type":"teleport"}"#,
            r#"{"lat":1,"lon":2,"ts_ms":3}"#,
            r#"{"type":"status","status":"asleep"}"#,
            r#"{"type":"shift","end_ms":-5}"#,
            r#"{"type":"shift","end_ms":"soon"}"#,
            r#"{"type":"accept"}"#,
            r#"{"type":"accept","offer_id":"o_not_an_offer"}"#,
            r#"{"type":"decline","offer_id":7}"#,
            r#"{"type":"picked_up"}"#,
            r#"{"type":"delivered","order_id":"r_not_an_order"}"#,
            r#"{"type":"failed","order_id":"o_1"}"#,
            r#"{"type":"release","order_id":null}"#,
        ] {
            assert!(
                serde_json::from_str::<RiderMessage>(text).is_err(),
                "{text}"
            );
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
