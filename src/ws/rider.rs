//! `GET /ws/rider?token=…`: the rider app. Messages are parsed here (protocol shapes) and
//! handed to the rider's actor; everything the rider is told comes back through the
//! rider's outbox, which the actor keeps across reconnects of the same rider.

use super::{pump, PumpOpts};
use crate::auth::Principal;
use crate::errors::{ApiError, ErrorBody};
use crate::extract::SocketRequest;
use crate::ratelimit::TokenBucket;
use actix_web::{get, HttpResponse};
use dispatch_actors::domain::gps::RawFix;
use dispatch_actors::domain::{OfferId, OrderId};
use dispatch_actors::metric_names;
use dispatch_actors::protocol::{RiderCommand, RiderNotice};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::time::Duration;

/// Why a rider message was refused: the `error` frame's code and message.
pub type Refusal = (&'static str, String);

/// A well-formed `location` message, decoded straight into its fields. A rider sends one
/// every few seconds: building a `serde_json::Value` (a map and a string per key) for each
/// was the largest share of GPS intake after the socket itself.
///
/// Unknown fields send a message to the general path: serde skips an ignored field's value
/// unchecked (a number past f64's range included), where the general parser refuses it
/// (found by the `rider_message` fuzz target).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LocationFrame<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    lat: Option<f64>,
    lon: Option<f64>,
    ts_ms: Option<f64>,
    accuracy_m: Option<f64>,
    speed_mps: Option<f64>,
    heading_deg: Option<f64>,
}

/// Parses one rider message, or says what is wrong with it.
pub fn parse(text: &str) -> Result<RiderCommand, Refusal> {
    // The fast path takes only location messages whose fields are all numbers (or null),
    // with no key twice; anything else (including a bad lat, which must reach the
    // validator as missing) takes the general path below, so both give the same answer.
    if let Ok(f) = serde_json::from_str::<LocationFrame>(text) {
        if f.ty == "location" {
            return Ok(RiderCommand::Location(RawFix {
                lat: f.lat,
                lon: f.lon,
                ts_ms: f.ts_ms,
                accuracy_m: f.accuracy_m,
                speed_mps: f.speed_mps,
                heading_deg: f.heading_deg,
            }));
        }
    }
    parse_general(text)
}

/// Any rider message, through a `serde_json::Value`. [`parse`] must answer exactly what
/// this does (fuzz/fuzz_targets/rider_message.rs checks it on arbitrary input).
pub fn parse_general(text: &str) -> Result<RiderCommand, Refusal> {
    let bad = |m: &str| ("invalid_message", m.to_string());
    let v: Value = serde_json::from_str(text).map_err(|_| bad("not a JSON object"))?;
    let obj = v.as_object().ok_or_else(|| bad("not a JSON object"))?;
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing \"type\""))?;
    let string = |o: &Map<String, Value>, k: &str| -> Result<String, Refusal> {
        o.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| bad(&format!("missing string field \"{k}\"")))
    };
    let num = |k: &str| obj.get(k).and_then(Value::as_f64);
    let offer = |o: &Map<String, Value>| -> Result<OfferId, Refusal> {
        OfferId::parse(&string(o, "offer_id")?)
            .map_err(|_| ("offer_not_available", "no such offer".to_string()))
    };
    let order = |o: &Map<String, Value>| -> Result<OrderId, Refusal> {
        OrderId::parse(&string(o, "order_id")?)
            .map_err(|_| ("forbidden", "not your order".to_string()))
    };
    Ok(match ty {
        "location" => RiderCommand::Location(RawFix {
            lat: num("lat"),
            lon: num("lon"),
            ts_ms: num("ts_ms"),
            accuracy_m: num("accuracy_m"),
            speed_mps: num("speed_mps"),
            heading_deg: num("heading_deg"),
        }),
        "status" => match string(obj, "status")?.as_str() {
            "online" => RiderCommand::SetOnline(true),
            "offline" => RiderCommand::SetOnline(false),
            _ => return Err(bad("status must be \"online\" or \"offline\"")),
        },
        "shift" => RiderCommand::Shift {
            end_ms: match obj.get("end_ms") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_u64()
                        .ok_or_else(|| bad("end_ms must be a whole number of ms, or null"))?,
                ),
            },
        },
        "accept" => RiderCommand::Accept {
            offer_id: offer(obj)?,
        },
        "decline" => RiderCommand::Decline {
            offer_id: offer(obj)?,
        },
        "picked_up" => RiderCommand::PickedUp {
            order_id: order(obj)?,
        },
        "delivered" => RiderCommand::Delivered {
            order_id: order(obj)?,
        },
        "release" => RiderCommand::Release {
            order_id: order(obj)?,
        },
        "failed" => {
            let reason = string(obj, "reason")?;
            RiderCommand::Failed {
                order_id: order(obj)?,
                reason,
            }
        }
        other => return Err(bad(&format!("unknown type {other:?}"))),
    })
}

#[utoipa::path(
    operation_id = "rider_socket",
    tag = "sockets",
    params(("token" = Option<String>, Query, description = "The token, if not in Authorization")),
    security(("bearer" = [])),
    responses(
        (status = 101, description = "Upgraded. Text frames, one JSON object each, with `type`: server → client `RiderNotice`; client → server: `RiderMessage` (`/api/v1/socket-frames.schema.json`)"),
        (status = 400, description = "`invalid_input`: not a WebSocket upgrade", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or invalid token", body = ErrorBody),
        (status = 403, description = "`forbidden`: rider tokens only, or a browser origin not allowed", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over a socket cap, with Retry-After", body = ErrorBody),
    ),
    extensions(("x-socket-frames" = json!({"schema": "/api/v1/socket-frames.schema.json", "server_to_client": "#/$defs/RiderNotice", "client_to_server": "#/$defs/RiderMessage"}))),
)]
#[get("/ws/rider")]
pub async fn connect(socket: SocketRequest) -> Result<HttpResponse, ApiError> {
    let state = socket.state.clone();
    let Principal::Rider(rider_id) = socket.who.clone() else {
        return Err(ApiError::forbidden("rider tokens only"));
    };
    // On a node of a cluster the rider's actor comes to the node of its socket (on one
    // node it is here already).
    state.engine.take_rider(&rider_id).await?;
    let super::Opened {
        response,
        session,
        stream,
        outbox,
        ticket,
    } = socket.open::<RiderNotice>(state.settings.server.ws_queue_frames)?;
    let rider = state.engine.rider_handle(&rider_id)?;
    state.engine.attach_rider(&rider_id, outbox.clone()).await?;
    let limits = &state.settings.rate_limit;
    let mut fixes = TokenBucket::with_burst(
        limits.rider_fixes_per_10s,
        Duration::from_secs(10),
        limits.rider_fix_burst,
    );
    let mut others = TokenBucket::new(limits.rider_messages_per_10s, Duration::from_secs(10));
    let opts = PumpOpts::from_state(&state, "rider");
    let shutdown = state.shutdown.subscribe();
    let reply = outbox.clone();
    let on_text = move |text: &str| {
        let cmd = match parse(text) {
            Ok(c) => c,
            Err((code, message)) => {
                reply.push(RiderNotice::error(code, message));
                return;
            }
        };
        let bucket = if matches!(cmd, RiderCommand::Location(_)) {
            &mut fixes
        } else {
            &mut others
        };
        if !bucket.try_take() {
            metrics::counter!(metric_names::RATE_LIMITED_TOTAL, "what" => "rider_socket")
                .increment(1);
            reply.push(RiderNotice::error(
                "rate_limited",
                "too many messages; slow down",
            ));
            return;
        }
        rider.command(cmd);
    };
    let engine = state.engine.clone();
    actix_web::rt::spawn(async move {
        let to_text = |n: &RiderNotice| serde_json::to_string(n).unwrap_or_default();
        pump(
            session,
            stream,
            outbox.clone(),
            to_text,
            on_text,
            opts,
            shutdown,
            ticket,
        )
        .await;
        engine.detach_rider(&rider_id, outbox);
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzzer's input: an unknown key holding a number past f64's range.
    #[test]
    fn an_unknown_field_out_of_range_gets_the_general_answer() {
        let text = "{\"type\":\"location\",\"l\\te.4727, ts_00}\":9031959e9999991}";
        assert_eq!(parse(text), parse_general(text));
        assert_eq!(code(parse(text)), "invalid_message");
        let extra = r#"{"type":"location","lat":31.2,"lon":121.4,"ts_ms":1,"altitude_m":4}"#;
        assert_eq!(parse(extra), parse_general(extra));
        assert!(parse(extra).is_ok());
    }

    fn code(r: Result<RiderCommand, Refusal>) -> &'static str {
        match r {
            Err((code, _)) => code,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn parses_each_message_type() {
        assert!(matches!(
            parse(r#"{"type":"location","lat":1.5,"lon":2,"ts_ms":5}"#),
            Ok(RiderCommand::Location(RawFix {
                lat: Some(_),
                lon: Some(_),
                ts_ms: Some(_),
                ..
            }))
        ));
        assert_eq!(
            parse(r#"{"type":"status","status":"online"}"#),
            Ok(RiderCommand::SetOnline(true))
        );
        assert!(matches!(
            parse(r#"{"type":"accept","offer_id":"f_x"}"#),
            Ok(RiderCommand::Accept { .. })
        ));
        assert!(matches!(
            parse(r#"{"type":"failed","order_id":"o_x","reason":"closed"}"#),
            Ok(RiderCommand::Failed { .. })
        ));
    }

    #[test]
    fn a_shift_end_is_a_whole_number_of_ms_or_null() {
        assert_eq!(
            parse(r#"{"type":"shift","end_ms":1700000000000}"#),
            Ok(RiderCommand::Shift {
                end_ms: Some(1_700_000_000_000)
            })
        );
        for open in [r#"{"type":"shift","end_ms":null}"#, r#"{"type":"shift"}"#] {
            assert_eq!(parse(open), Ok(RiderCommand::Shift { end_ms: None }));
        }
        for bad in [
            r#"{"type":"shift","end_ms":"soon"}"#,
            r#"{"type":"shift","end_ms":-5}"#,
            r#"{"type":"shift","end_ms":1.5}"#,
        ] {
            assert_eq!(code(parse(bad)), "invalid_message", "{bad}");
        }
    }

    #[test]
    fn the_location_fast_path_agrees_with_the_general_one() {
        for text in [
            r#"{"type":"location","lat":31.2,"lon":121.4,"ts_ms":1700000000000,"accuracy_m":5,"speed_mps":4.5,"heading_deg":90}"#,
            r#"{"lat":31.2,"type":"location","lon":121.4,"ts_ms":5,"extra":{"a":[1,2]}}"#,
            r#"{"type":"location","lat":null,"lon":2,"ts_ms":5}"#,
            r#"{"type":"location"}"#,
            r#"{"type":"locat\u0069on","lat":1,"lon":2,"ts_ms":5}"#,
            r#"{"type":"location","lat":1,"lat":2,"lon":2,"ts_ms":5}"#,
            r#"{"type":"location","lat":"x","lon":2,"ts_ms":5}"#,
            r#"{"type":"location","lat":1e400,"lon":2,"ts_ms":5}"#,
            r#"{"type":"status","status":"online","lat":1}"#,
        ] {
            assert_eq!(parse(text), parse_general(text), "{text}");
        }
    }

    #[test]
    fn a_location_with_a_string_lat_reaches_the_validator_without_it() {
        let Ok(RiderCommand::Location(raw)) =
            parse(r#"{"type":"location","lat":"x","lon":2,"ts_ms":5}"#)
        else {
            panic!()
        };
        assert_eq!(raw.lat, None);
    }

    #[test]
    fn malformed_messages_are_invalid_message() {
        assert_eq!(code(parse("nope")), "invalid_message");
        assert_eq!(code(parse("[1]")), "invalid_message");
        assert_eq!(code(parse(r#"{"type":"dance"}"#)), "invalid_message");
        assert_eq!(code(parse(r#"{"type":"accept"}"#)), "invalid_message");
        assert_eq!(
            code(parse(r#"{"type":"status","status":"away"}"#)),
            "invalid_message"
        );
        assert_eq!(
            code(parse(r#"{"type":"failed","order_id":"o_1"}"#)),
            "invalid_message"
        );
        assert_eq!(
            code(parse(r#"{"type":"accept","offer_id":"o_1"}"#)),
            "offer_not_available"
        );
    }
}
