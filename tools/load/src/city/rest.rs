//! REST calls of the driver: one JSON request, and creating what a city needs (riders,
//! merchants with one item each, customers). A failed call is counted, never a panic.

use super::movement::CityBox;
use super::Shared;
use crate::stats::bump;
use futures_util::StreamExt;
use rand::Rng;
use reqwest::{Client, Method};
use serde_json::{json, Value};

/// Sends one JSON request (`bearer` empty: no Authorization); a transport error or a non-2xx answer is counted under
/// `what` (e.g. "POST /orders") and gives None.
pub async fn call(
    shared: &Shared,
    http: &Client,
    method: Method,
    url: String,
    bearer: &str,
    body: Value,
    what: &str,
) -> Option<Value> {
    let mut req = http.request(method, url).json(&body);
    if !bearer.is_empty() {
        req = req.bearer_auth(bearer);
    }
    let res = req.send().await;
    let r = match res {
        Ok(r) => r,
        Err(e) => {
            bump(&shared.counters.rest_failed);
            let why = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "transport"
            };
            shared.counters.note(format!("{what}: {why}"));
            return None;
        }
    };
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Some(body);
    }
    bump(&shared.counters.rest_failed);
    let code = body["error"]["code"].as_str().unwrap_or("");
    shared
        .counters
        .note(format!("{what}: {} {code}", status.as_u16()));
    None
}

/// Creates `n` riders (64 requests in flight); returns the tokens of those created.
pub async fn create_riders(
    shared: &Shared,
    http: &Client,
    url: &str,
    token: &str,
    n: usize,
) -> Vec<String> {
    futures_util::stream::iter(0..n)
        .map(|i| async move {
            let r = call(
                shared,
                http,
                Method::POST,
                format!("{url}/api/v1/riders"),
                token,
                json!({"name": format!("city rider {i}")}),
                "POST /riders",
            )
            .await?;
            r["token"].as_str().map(str::to_string)
        })
        .buffer_unordered(64)
        .filter_map(|t| async move { t })
        .collect()
        .await
}

pub struct Merchant {
    pub id: String,
    pub token: String,
    pub item_id: String,
    /// Metres east / north of the city's centre.
    pub at: (f64, f64),
}

/// Creates `n` merchants spread over the box, each with one available item.
pub async fn create_merchants(
    shared: &Shared,
    http: &Client,
    url: &str,
    token: &str,
    n: usize,
    prep_s: u32,
    city: &CityBox,
) -> Vec<Merchant> {
    let spots: Vec<(f64, f64)> = {
        let mut rng = rand::thread_rng();
        (0..n).map(|_| city.random_point(&mut rng)).collect()
    };
    futures_util::stream::iter(spots.into_iter().enumerate())
        .map(|(i, at)| async move {
            let (lat, lon) = city.to_latlon(at.0, at.1);
            let m = call(
                shared,
                http,
                Method::POST,
                format!("{url}/api/v1/merchants"),
                token,
                json!({"name": format!("city kitchen {i}"), "location": {"lat": lat, "lon": lon},
                       "prep_time_s": prep_s}),
                "POST /merchants",
            )
            .await?;
            let id = m["merchant_id"].as_str()?.to_string();
            let mtoken = m["token"].as_str()?.to_string();
            let item = call(
                shared,
                http,
                Method::POST,
                format!("{url}/api/v1/merchants/{id}/items"),
                &mtoken,
                json!({"name": "noodles", "price_cents": 1800 + (i % 7) as i64 * 100}),
                "POST /merchants/{id}/items",
            )
            .await?;
            Some(Merchant {
                id,
                token: mtoken,
                item_id: item["item_id"].as_str()?.to_string(),
                at,
            })
        })
        .buffer_unordered(16)
        .filter_map(|m| async move { m })
        .collect()
        .await
}

/// Registers `n` customers (unique names per run); returns their tokens. Registration
/// hashes a password on the server (slow on purpose) and is rate limited per IP
/// (`rate_limit.auth_per_ip_per_minute`), so keep `n` modest: orders reuse them.
pub async fn create_customers(shared: &Shared, http: &Client, url: &str, n: usize) -> Vec<String> {
    let run: u32 = rand::thread_rng().gen();
    futures_util::stream::iter(0..n)
        .map(|i| async move {
            let r = call(
                shared,
                http,
                Method::POST,
                format!("{url}/api/v1/customers"),
                "",
                json!({"username": format!("city-{run:08x}-{i}"), "password": "city-load"}),
                "POST /customers",
            )
            .await?;
            r["token"].as_str().map(str::to_string)
        })
        // Two at a time: each costs the server ~19 MiB while it hashes.
        .buffer_unordered(2)
        .filter_map(|t| async move { t })
        .collect()
        .await
}
