//! The chaos run's clients. They behave as real apps do when the server goes away: an
//! order's requests are retried with their `Idempotency-Key` until answered, a rider's
//! socket reconnects and picks up what `welcome` says it holds. Every answer that
//! acknowledges a state goes into the ledger.

use super::ledger::Ledger;
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// How long a client keeps retrying one request before it gives up on it.
const GIVE_UP: Duration = Duration::from_secs(90);

#[derive(Default)]
pub struct Counts {
    pub orders_started: AtomicU64,
    pub orders_given_up: AtomicU64,
    pub retries: AtomicU64,
    pub reconnects: AtomicU64,
    pub offers_accepted: AtomicU64,
    pub frames_error: AtomicU64,
    /// Definite refusals and error frames, by what and code (e.g. "pay 409").
    pub refusals: Mutex<HashMap<String, u64>>,
}

impl Counts {
    fn refused(&self, what: String) {
        *self
            .refusals
            .lock()
            .expect("counts")
            .entry(what)
            .or_default() += 1;
    }
}

pub struct World {
    pub url: String,
    pub http: Client,
    pub ledger: Mutex<Ledger>,
    pub counts: Counts,
    pub merchants: Vec<Merchant>,
    pub customers: Vec<String>,
    pub center: (f64, f64),
}

pub struct Merchant {
    pub id: String,
    pub token: String,
    pub item_id: String,
    pub at: (f64, f64),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// A point about `r_m` metres (at most) from `c`.
pub fn near(c: (f64, f64), r_m: f64) -> (f64, f64) {
    let mut rng = rand::thread_rng();
    let dx = rng.gen_range(-r_m..r_m);
    let dy = rng.gen_range(-r_m..r_m);
    (
        c.0 + dy / 111_320.0,
        c.1 + dx / (111_320.0 * c.0.to_radians().cos()),
    )
}

enum Outcome {
    Done(Value),
    /// A definite answer that is not a success (4xx but 409 in progress / 429).
    Refused(StatusCode),
}

/// One request retried (same body, same key) through refused connections, timeouts,
/// 503, 429 and 409 `request_in_progress`, until answered or `GIVE_UP`.
async fn until_answered(
    w: &World,
    method: Method,
    path: &str,
    bearer: &str,
    key: Option<&str>,
    body: Value,
) -> Option<Outcome> {
    let t = Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut req = w
            .http
            .request(method.clone(), format!("{}{path}", w.url))
            .bearer_auth(bearer)
            .timeout(Duration::from_secs(10))
            .json(&body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        if let Ok(r) = req.send().await {
            let status = r.status();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                return Some(Outcome::Done(v));
            }
            let in_progress = v["error"]["code"] == "request_in_progress";
            let transient = status == StatusCode::SERVICE_UNAVAILABLE
                || status == StatusCode::TOO_MANY_REQUESTS
                || in_progress;
            if !transient {
                let code = v["error"]["code"].as_str().unwrap_or("");
                w.counts
                    .refused(format!("{method} {} {status} {code}", route_of(path)));
                return Some(Outcome::Refused(status));
            }
        }
        if t.elapsed() > GIVE_UP {
            return None;
        }
        w.counts.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// A path with its ids left out, for counting.
fn route_of(path: &str) -> String {
    path.split('/')
        .map(|p| if p.contains('_') { "{id}" } else { p })
        .collect::<Vec<_>>()
        .join("/")
}

fn ack_order(w: &World, v: &Value) {
    if let (Some(id), Some(status), Some(version)) = (
        v["order_id"].as_str(),
        v["status"].as_str(),
        v["version"].as_u64(),
    ) {
        w.ledger.lock().expect("ledger").ack(id, status, version);
    }
}

/// One order from a customer's click to the merchant's accept. Riders do the rest.
pub async fn one_order(w: Arc<World>, seq: u64) {
    w.counts.orders_started.fetch_add(1, Ordering::Relaxed);
    let (cust, m) = {
        let mut rng = rand::thread_rng();
        (
            w.customers[rng.gen_range(0..w.customers.len())].clone(),
            &w.merchants[rng.gen_range(0..w.merchants.len())],
        )
    };
    let (lat, lon) = near(m.at, 2000.0);
    let run = rand::random::<u32>();
    let body = json!({"merchant_id": m.id, "items": [{"item_id": m.item_id, "qty": 1}],
                      "dropoff": {"lat": lat, "lon": lon}});
    let key = format!("chaos-{run:08x}-{seq}-create");
    let Some(Outcome::Done(order)) =
        until_answered(&w, Method::POST, "/api/v1/orders", &cust, Some(&key), body).await
    else {
        w.counts.orders_given_up.fetch_add(1, Ordering::Relaxed);
        return;
    };
    ack_order(&w, &order);
    let Some(id) = order["order_id"].as_str().map(str::to_string) else {
        return;
    };
    let key = format!("chaos-{run:08x}-{seq}-pay");
    let paid = until_answered(
        &w,
        Method::POST,
        &format!("/api/v1/orders/{id}/pay"),
        &cust,
        Some(&key),
        json!({"payment_ref": key}),
    )
    .await;
    let Some(Outcome::Done(paid)) = paid else {
        w.counts.orders_given_up.fetch_add(1, Ordering::Relaxed);
        return;
    };
    ack_order(&w, &paid);
    // The merchant presses accept; an accept that landed before a crash answers 409 on
    // its retry, so a 409 is settled by reading the order.
    let accepted = until_answered(
        &w,
        Method::POST,
        &format!("/api/v1/orders/{id}/accept"),
        &m.token,
        None,
        json!({}),
    )
    .await;
    match accepted {
        Some(Outcome::Done(v)) => ack_order(&w, &v),
        Some(Outcome::Refused(StatusCode::CONFLICT)) => {
            if let Some(Outcome::Done(v)) = until_answered(
                &w,
                Method::GET,
                &format!("/api/v1/orders/{id}"),
                &m.token,
                None,
                Value::Null,
            )
            .await
            {
                ack_order(&w, &v);
            }
        }
        _ => {
            w.counts.orders_given_up.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Orders at `rate` per second until `stop` turns true.
pub async fn order_stream(w: Arc<World>, rate: f64, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.01)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                seq += 1;
                tasks.spawn(one_order(w.clone(), seq));
            }
            _ = stop.changed() => break,
        }
        while tasks.try_join_next().is_some() {}
    }
    // Orders already clicked finish their requests.
    while tasks.join_next().await.is_some() {}
}

/// What a rider does next with an order it holds.
struct Due {
    at: tokio::time::Instant,
    order_id: String,
    action: &'static str,
}

/// One rider app: connect, go online, a fix every `fix_every`, accept every offer, pick up
/// and deliver what it is assigned; reconnect whenever the socket goes.
pub async fn rider(
    w: Arc<World>,
    rider_id: String,
    token: String,
    fix_every: Duration,
    stop: watch::Receiver<bool>,
) {
    let ws_url = format!("{}/ws/rider?token={token}", w.url.replacen("http", "ws", 1));
    let home = near(w.center, 1500.0);
    let mut first = true;
    while !*stop.borrow() {
        if !first {
            w.counts.reconnects.fetch_add(1, Ordering::Relaxed);
            let pause = Duration::from_millis(rand::thread_rng().gen_range(200..800));
            tokio::time::sleep(pause).await;
        }
        first = false;
        let Ok(Ok((ws, _))) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(&ws_url),
        )
        .await
        else {
            continue;
        };
        session(&w, &rider_id, ws, home, fix_every, stop.clone()).await;
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn session(
    w: &World,
    rider_id: &str,
    mut ws: Ws,
    home: (f64, f64),
    fix_every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut dues: Vec<Due> = Vec::new();
    let mut tick = tokio::time::interval(fix_every);
    let fix = || {
        let (lat, lon) = near(home, 30.0);
        json!({"type": "location", "lat": lat, "lon": lon, "ts_ms": now_ms(), "accuracy_m": 8.0})
            .to_string()
    };
    let online = json!({"type": "status", "status": "online"}).to_string();
    if ws.send(Message::text(online)).await.is_err() {
        return;
    }
    loop {
        let next_due = dues.iter().map(|d| d.at).min();
        let mut out: Vec<String> = Vec::new();
        tokio::select! {
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                return;
            }
            _ = tick.tick() => out.push(fix()),
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600))), if next_due.is_some() => {
                let now = tokio::time::Instant::now();
                let (ready, later): (Vec<Due>, Vec<Due>) = dues.drain(..).partition(|d| d.at <= now);
                dues = later;
                for d in ready {
                    out.push(json!({"type": d.action, "order_id": d.order_id}).to_string());
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let Ok(v) = serde_json::from_str::<Value>(&t) else { continue };
                    on_frame(w, rider_id, &v, &mut dues, &mut out);
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
        for text in out {
            if ws.send(Message::text(text)).await.is_err() {
                return;
            }
        }
    }
}

fn later(min_s: f64, max_s: f64) -> tokio::time::Instant {
    tokio::time::Instant::now()
        + Duration::from_secs_f64(rand::thread_rng().gen_range(min_s..max_s))
}

fn plan(dues: &mut Vec<Due>, order: &Value) {
    let Some(id) = order["order_id"].as_str() else {
        return;
    };
    let action = match order["status"].as_str() {
        Some("assigned") => "picked_up",
        Some("picked_up") => "delivered",
        _ => return,
    };
    dues.retain(|d| d.order_id != id);
    dues.push(Due {
        at: later(1.0, 4.0),
        order_id: id.to_string(),
        action,
    });
}

fn on_frame(w: &World, rider_id: &str, v: &Value, dues: &mut Vec<Due>, out: &mut Vec<String>) {
    let ledger = |order: &Value| {
        let (Some(id), Some(status), Some(version)) = (
            order["order_id"].as_str(),
            order["status"].as_str(),
            order["version"].as_u64(),
        ) else {
            return;
        };
        let mut l = w.ledger.lock().expect("ledger");
        if status == "picked_up" && order["rider_id"].as_str() == Some(rider_id) {
            l.picked_up(id, rider_id, version);
        } else {
            l.ack(id, status, version);
        }
    };
    match v["type"].as_str().unwrap_or("") {
        "welcome" => {
            for o in v["orders"].as_array().into_iter().flatten() {
                ledger(o);
                plan(dues, o);
            }
            if let Some(id) = v["offer"]["offer_id"].as_str() {
                out.push(json!({"type": "accept", "offer_id": id}).to_string());
            }
        }
        "offer" => {
            if let Some(id) = v["offer_id"].as_str() {
                w.counts.offers_accepted.fetch_add(1, Ordering::Relaxed);
                out.push(json!({"type": "accept", "offer_id": id}).to_string());
            }
        }
        "assigned" | "order_updated" => {
            ledger(&v["order"]);
            plan(dues, &v["order"]);
        }
        "unassigned" | "order_cancelled" => {
            if let Some(id) = v["order_id"].as_str() {
                dues.retain(|d| d.order_id != id);
            }
        }
        "error" => {
            w.counts.frames_error.fetch_add(1, Ordering::Relaxed);
            let code = v["code"].as_str().unwrap_or("");
            w.counts.refused(format!("rider socket error {code}"));
        }
        _ => {}
    }
}

/// Creates what the run needs over REST (retried through a restart like any client).
pub async fn setup(
    url: &str,
    http: &Client,
    dispatcher: &str,
    riders: usize,
    merchants: usize,
    customers: usize,
    center: (f64, f64),
) -> (Vec<Merchant>, Vec<String>, Vec<(String, String)>) {
    let w = World {
        url: url.to_string(),
        http: http.clone(),
        ledger: Mutex::new(Ledger::default()),
        counts: Counts::default(),
        merchants: vec![],
        customers: vec![],
        center,
    };
    let mut ms = Vec::new();
    for i in 0..merchants {
        let at = near(center, 2500.0);
        let body = json!({"name": format!("chaos kitchen {i}"),
                          "location": {"lat": at.0, "lon": at.1}, "prep_time_s": 5});
        let Some(Outcome::Done(m)) = until_answered(
            &w,
            Method::POST,
            "/api/v1/merchants",
            dispatcher,
            None,
            body,
        )
        .await
        else {
            super::fail("creating a merchant failed");
        };
        let (id, token) = (
            m["merchant_id"].as_str().unwrap_or_default().to_string(),
            m["token"].as_str().unwrap_or_default().to_string(),
        );
        let Some(Outcome::Done(item)) = until_answered(
            &w,
            Method::POST,
            &format!("/api/v1/merchants/{id}/items"),
            &token,
            None,
            json!({"name": "noodles", "price_cents": 1800}),
        )
        .await
        else {
            super::fail("creating an item failed");
        };
        let item_id = item["item_id"].as_str().unwrap_or_default().to_string();
        ms.push(Merchant {
            id,
            token,
            item_id,
            at,
        });
    }
    let run = rand::random::<u32>();
    let mut cs = Vec::new();
    for i in 0..customers {
        let body = json!({"username": format!("chaos-{run:08x}-{i}"), "password": "chaos-run"});
        let Some(Outcome::Done(c)) =
            until_answered(&w, Method::POST, "/api/v1/customers", "", None, body).await
        else {
            super::fail("registering a customer failed");
        };
        cs.push(c["token"].as_str().unwrap_or_default().to_string());
    }
    let mut rs = Vec::new();
    for i in 0..riders {
        let Some(Outcome::Done(r)) = until_answered(
            &w,
            Method::POST,
            "/api/v1/riders",
            dispatcher,
            None,
            json!({"name": format!("chaos rider {i}")}),
        )
        .await
        else {
            super::fail("creating a rider failed");
        };
        rs.push((
            r["rider_id"].as_str().unwrap_or_default().to_string(),
            r["token"].as_str().unwrap_or_default().to_string(),
        ));
    }
    (ms, cs, rs)
}

/// Counts of the run's error frames and retries, for the report.
pub fn counts(c: &Counts) -> HashMap<&'static str, u64> {
    HashMap::from([
        ("orders_started", c.orders_started.load(Ordering::Relaxed)),
        ("orders_given_up", c.orders_given_up.load(Ordering::Relaxed)),
        ("request_retries", c.retries.load(Ordering::Relaxed)),
        ("socket_reconnects", c.reconnects.load(Ordering::Relaxed)),
        ("offers_accepted", c.offers_accepted.load(Ordering::Relaxed)),
        ("error_frames", c.frames_error.load(Ordering::Relaxed)),
    ])
}
