//! The socket frames as one JSON Schema (2020-12) document, from the frame types
//! themselves: `RiderNotice` (server → rider), `RiderMessage` (rider → server),
//! `MerchantFrame`, `TrackFrame`, `ShareFrame` and `DashboardFrame`. OpenAPI 3.1's schema objects are
//! JSON Schema 2020-12, so utoipa's schemas are used as they are; only their references
//! move from `#/components/schemas/` to `#/$defs/`.
//!
//! `x-sockets` maps each socket path to its frames; it is read from the OpenAPI document's
//! `x-socket-frames` (the socket handlers' annotations), so the two cannot disagree.

use crate::ws::frames::{DashboardFrame, MerchantFrame, ShareFrame, TrackFrame};
use crate::ws::rider_messages::RiderMessage;
use dispatch_actors::protocol::RiderNotice;
use serde_json::{json, Map, Value};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

type Named = (String, RefOr<Schema>);

fn with_references<T: ToSchema>(out: &mut Vec<Named>) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

/// Every frame type and every schema they refer to, by name.
pub fn schemas() -> Vec<Named> {
    let mut out = Vec::new();
    with_references::<RiderNotice>(&mut out);
    with_references::<RiderMessage>(&mut out);
    with_references::<MerchantFrame<'static>>(&mut out);
    with_references::<TrackFrame<'static>>(&mut out);
    with_references::<ShareFrame<'static>>(&mut out);
    with_references::<DashboardFrame<'static>>(&mut out);
    out
}

/// Rewrites every OpenAPI component reference into a `$defs` one.
fn to_defs_refs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "$ref" {
                    if let Value::String(r) = child {
                        if let Some(name) = r.strip_prefix("#/components/schemas/") {
                            *r = format!("#/$defs/{name}");
                        }
                    }
                } else {
                    to_defs_refs(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_defs_refs),
        _ => {}
    }
}

/// `x-sockets`: each socket path of the OpenAPI document with its `x-socket-frames`.
fn sockets(openapi: &Value) -> Map<String, Value> {
    let Some(paths) = openapi.get("paths").and_then(Value::as_object) else {
        return Map::new();
    };
    paths
        .iter()
        .filter_map(|(path, item)| {
            let frames = item.get("get")?.get("x-socket-frames")?;
            Some((path.clone(), frames.clone()))
        })
        .collect()
}

pub fn document() -> Value {
    let mut defs = Map::new();
    for (name, schema) in schemas() {
        let mut v = serde_json::to_value(&schema).unwrap_or(Value::Null);
        to_defs_refs(&mut v);
        defs.insert(name, v);
    }
    let roots = [
        "RiderNotice",
        "RiderMessage",
        "MerchantFrame",
        "TrackFrame",
        "ShareFrame",
        "DashboardFrame",
    ];
    let openapi = serde_json::to_value(super::document()).unwrap_or(Value::Null);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "dispatchd socket frames",
        "description": "Every WebSocket frame, both directions (docs/protocol.md). A frame \
            is one JSON object with `type`; fields not listed may be added and should be \
            ignored. Validate one socket's frames against its definition in `x-sockets` \
            (e.g. `#/$defs/RiderNotice`); the root accepts a frame of any socket.",
        "x-sockets": sockets(&openapi),
        "anyOf": roots.iter().map(|r| json!({"$ref": format!("#/$defs/{r}")})).collect::<Vec<_>>(),
        "$defs": defs,
    })
}
