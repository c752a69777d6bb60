//! The harness: one server per test on a free port (real HTTP and WebSockets), plus
//! helpers for the actors of the protocol — customers, merchants, riders, dispatcher.

use actix_web::web;
use dispatchd::settings::Settings;
use dispatchd::startup::{AppState, Application};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const DISPATCHER_TOKEN: &str = "test-dispatcher-token";
/// The merchant every test orders from (Shanghai, People's Square).
pub const SHOP: (f64, f64) = (31.2304, 121.4737);
/// A drop-off about 1.5 km north-east of the shop.
pub const HOME: (f64, f64) = (31.2420, 121.4850);

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A process-wide unique suffix (usernames must be unique per server).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A point `north_m` metres north and `east_m` metres east of `from`.
pub fn offset(from: (f64, f64), north_m: f64, east_m: f64) -> (f64, f64) {
    let lat = from.0 + north_m / 111_195.0;
    let lon = from.1 + east_m / (111_195.0 * from.0.to_radians().cos());
    (lat, lon)
}

/// Polls `check` until it yields `Some`, or panics after `within`.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub struct TestApp {
    pub base: String,
    pub ws_base: String,
    pub dispatcher: String,
    pub client: reqwest::Client,
    pub state: web::Data<AppState>,
}

/// Starts a server on 127.0.0.1:0 with short timers; `tweak` adjusts the settings.
pub async fn spawn_app(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut s = Settings::default();
    s.server.bind = "127.0.0.1:0".into();
    s.server.workers = 1;
    s.server.shutdown_timeout_s = 1;
    s.demo.enabled = false;
    s.auth.dispatcher_token = DISPATCHER_TOKEN.into();
    s.dashboard.update_interval_ms = 100;
    tweak(&mut s);
    s.validate().expect("test settings are valid");
    let app = Application::build(s).await.expect("the application starts");
    let port = app.port();
    let state = app.state();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        ws_base: format!("ws://127.0.0.1:{port}"),
        dispatcher: DISPATCHER_TOKEN.into(),
        client: reqwest::Client::new(),
        state,
    }
}

/// A REST answer: status plus JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: StatusCode,
    pub text: String,
    pub body: Value,
}

impl Resp {
    /// The protocol's error code, if the body is an error.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        self.body
    }

    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.code(),
            code,
            "unexpected error code; body: {}",
            self.text
        );
        assert!(
            self.body["error"]["message"].is_string(),
            "error without a message: {}",
            self.text
        );
    }
}

impl TestApp {
    /// Sends a request; `body` None sends no body, `headers` are extra headers.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let url = if path.starts_with("/healthz")
            || path.starts_with("/readyz")
            || path.starts_with("/metrics")
        {
            format!("{}{path}", self.base)
        } else {
            format!("{}/api/v1{path}", self.base)
        };
        let mut rb = self.client.request(method, url);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b);
        }
        let r = rb.send().await.expect("the request is sent");
        let status = r.status();
        let text = r.text().await.expect("a response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, text, body }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.raw(Method::GET, path, token, None, &[]).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.raw(
            Method::POST,
            path,
            token,
            Some(body.to_string().into_bytes()),
            &[],
        )
        .await
    }

    pub async fn post_with_key(&self, path: &str, token: &str, key: &str, body: &Value) -> Resp {
        self.raw(
            Method::POST,
            path,
            Some(token),
            Some(body.to_string().into_bytes()),
            &[("idempotency-key", key)],
        )
        .await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.raw(
            Method::PUT,
            path,
            token,
            Some(body.to_string().into_bytes()),
            &[],
        )
        .await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.raw(
            Method::PATCH,
            path,
            token,
            Some(body.to_string().into_bytes()),
            &[],
        )
        .await
    }

    // ---- actors of the protocol ----

    pub async fn customer(&self) -> Customer {
        let username = unique("cust");
        let r = self
            .post(
                "/customers",
                None,
                &json!({"username": username, "password": "correct horse"}),
            )
            .await
            .expect(201);
        Customer {
            id: r["customer_id"].as_str().unwrap().to_string(),
            token: r["token"].as_str().unwrap().to_string(),
            username,
        }
    }

    /// A merchant at `at` (prep time 0, so food is ready at accept) with one item.
    pub async fn merchant_at(&self, at: (f64, f64), price_cents: i64) -> Merchant {
        let r = self
            .post(
                "/merchants",
                Some(&self.dispatcher),
                &json!({"name": unique("Noodle Bar "), "location": {"lat": at.0, "lon": at.1}, "prep_time_s": 0}),
            )
            .await
            .expect(201);
        assert_eq!(r["merchant"]["open"], true);
        let id = r["merchant_id"].as_str().unwrap().to_string();
        let token = r["token"].as_str().unwrap().to_string();
        let item = self
            .post(
                &format!("/merchants/{id}/items"),
                Some(&token),
                &json!({"name": "dan dan noodles", "price_cents": price_cents}),
            )
            .await
            .expect(201);
        assert_eq!(item["available"], true);
        Merchant {
            id,
            token,
            item_id: item["item_id"].as_str().unwrap().to_string(),
        }
    }

    pub async fn merchant(&self) -> Merchant {
        self.merchant_at(SHOP, 1250).await
    }

    pub fn order_body(&self, m: &Merchant, qty: u32) -> Value {
        json!({"merchant_id": m.id, "items": [{"item_id": m.item_id, "qty": qty}],
               "dropoff": {"lat": HOME.0, "lon": HOME.1}})
    }

    /// Places an order (201, `pending_payment`).
    pub async fn order(&self, c: &Customer, m: &Merchant) -> Value {
        let o = self
            .post("/orders", Some(&c.token), &self.order_body(m, 1))
            .await
            .expect(201);
        assert_eq!(o["status"], "pending_payment");
        o
    }

    pub async fn pay(&self, c: &Customer, order_id: &str) -> Value {
        let o = self
            .post(
                &format!("/orders/{order_id}/pay"),
                Some(&c.token),
                &json!({"payment_ref": "pay_123"}),
            )
            .await
            .expect(200);
        assert_eq!(o["status"], "paid");
        o
    }

    pub async fn accept(&self, m: &Merchant, order_id: &str) -> Value {
        let o = self
            .post(
                &format!("/orders/{order_id}/accept"),
                Some(&m.token),
                &json!({"prep_time_s": 0}),
            )
            .await
            .expect(200);
        assert_eq!(o["status"], "accepted");
        o
    }

    /// An order taken through payment and the merchant's accept: it is being dispatched.
    pub async fn accepted_order(&self, c: &Customer, m: &Merchant) -> String {
        let o = self.order(c, m).await;
        let id = o["order_id"].as_str().unwrap().to_string();
        self.pay(c, &id).await;
        self.accept(m, &id).await;
        id
    }

    /// The order as the dispatcher sees it.
    pub async fn order_state(&self, order_id: &str) -> Value {
        self.get(&format!("/orders/{order_id}"), Some(&self.dispatcher))
            .await
            .expect(200)
    }

    pub async fn nearby(&self, at: (f64, f64)) -> Vec<Value> {
        let r = self
            .get(
                &format!(
                    "/riders/nearby?lat={}&lon={}&radius_m=50000&limit=100",
                    at.0, at.1
                ),
                Some(&self.dispatcher),
            )
            .await
            .expect(200);
        r.as_array().unwrap().clone()
    }

    /// The rider's entry in `riders/nearby` (around the shop), if listed.
    pub async fn nearby_rider(&self, rider_id: &str) -> Option<Value> {
        self.nearby(SHOP)
            .await
            .into_iter()
            .find(|r| r["rider_id"] == rider_id)
    }

    pub async fn create_rider(&self) -> (String, String) {
        let r = self
            .post(
                "/riders",
                Some(&self.dispatcher),
                &json!({"name": unique("Rider ")}),
            )
            .await
            .expect(201);
        (
            r["rider_id"].as_str().unwrap().to_string(),
            r["token"].as_str().unwrap().to_string(),
        )
    }

    /// Opens a WebSocket on `path` (e.g. `/ws/rider?token=…`).
    pub async fn ws(&self, path: &str) -> Result<WsClient, u16> {
        WsClient::connect(&format!("{}{path}", self.ws_base)).await
    }

    /// A connected rider that has not gone online yet (welcome read).
    pub async fn rider_connected(&self) -> Rider {
        let (id, token) = self.create_rider().await;
        let mut ws = self
            .ws(&format!("/ws/rider?token={token}"))
            .await
            .expect("rider socket");
        let welcome = ws.recv_type("welcome", Duration::from_secs(5)).await;
        assert_eq!(welcome["rider_id"], id);
        assert_eq!(
            welcome["status"], "offline",
            "a new rider is offline: {welcome}"
        );
        assert_eq!(welcome["offer"], Value::Null);
        Rider {
            id,
            token,
            ws,
            pos: None,
            last_ts: 0,
        }
    }

    /// A rider online at `at`, listed by `riders/nearby` (so the matcher knows it).
    pub async fn rider_at(&self, at: (f64, f64)) -> Rider {
        let mut r = self.rider_connected().await;
        r.online().await;
        r.move_to(at).await;
        let id = r.id.clone();
        wait_for(
            "the rider to be listed nearby",
            Duration::from_secs(5),
            || async { self.nearby_rider(&id).await },
        )
        .await;
        r
    }

    /// The dispatcher's dashboard socket (snapshot read and returned).
    pub async fn dashboard(&self) -> (WsClient, Value) {
        let mut ws = self
            .ws(&format!("/ws/dispatch?token={}", self.dispatcher))
            .await
            .expect("dispatch socket");
        let snap = ws.recv_type("snapshot", Duration::from_secs(5)).await;
        (ws, snap)
    }

    /// Orders listed in a fresh dashboard snapshot (every order not in a final state).
    pub async fn live_order_ids(&self) -> Vec<String> {
        let (mut ws, snap) = self.dashboard().await;
        ws.close().await;
        snap["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["order_id"].as_str().unwrap().to_string())
            .collect()
    }
}

pub struct Customer {
    pub id: String,
    pub token: String,
    pub username: String,
}

pub struct Merchant {
    pub id: String,
    pub token: String,
    pub item_id: String,
}

pub struct Rider {
    pub id: String,
    pub token: String,
    pub ws: WsClient,
    pub pos: Option<(f64, f64)>,
    pub last_ts: u64,
}

impl Rider {
    pub async fn online(&mut self) {
        self.ws
            .send_json(json!({"type": "status", "status": "online"}))
            .await;
    }

    /// A timestamp for a fix at `to`: now, or later if needed to keep the implied speed
    /// under 50 m/s (the server rejects over 70).
    pub fn ts_for(&self, to: (f64, f64)) -> u64 {
        let mut ts = now_ms().max(self.last_ts + 1);
        if let Some(from) = self.pos {
            let d = dispatch_actors::domain::GeoPoint::new(from.0, from.1)
                .unwrap()
                .distance_m(&dispatch_actors::domain::GeoPoint::new(to.0, to.1).unwrap());
            ts = ts.max(self.last_ts + (d / 50.0 * 1000.0) as u64 + 1);
        }
        ts
    }

    /// Sends an accepted-looking fix at `to` (no answer is expected).
    pub async fn move_to(&mut self, to: (f64, f64)) {
        let ts = self.ts_for(to);
        self.ws
            .send_json(json!({"type": "location", "lat": to.0, "lon": to.1, "ts_ms": ts, "accuracy_m": 5.0}))
            .await;
        self.pos = Some(to);
        self.last_ts = ts;
    }

    /// Reads frames until an `offer`, returns it.
    pub async fn expect_offer(&mut self) -> Value {
        self.ws.recv_type("offer", Duration::from_secs(8)).await
    }

    pub async fn send(&mut self, v: Value) {
        self.ws.send_json(v).await;
    }
}

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the server did to a socket we waited on.
#[derive(Debug)]
pub enum Ended {
    Closed(Option<CloseFrame<'static>>),
    /// The TCP stream ended (or failed) without a close frame.
    Dropped(String),
}

pub struct WsClient {
    stream: Stream,
    /// Every JSON frame read so far (for assertion messages and "never" checks).
    pub seen: Vec<Value>,
    ended: Option<Ended>,
}

impl WsClient {
    /// Connects; on an HTTP refusal returns its status.
    pub async fn connect(url: &str) -> Result<WsClient, u16> {
        match tokio_tungstenite::connect_async(url).await {
            Ok((stream, _)) => Ok(WsClient {
                stream,
                seen: Vec::new(),
                ended: None,
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("websocket connect to {url} failed: {e}"),
        }
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_text(&mut self, t: String) {
        self.stream
            .send(Message::Text(t))
            .await
            .expect("websocket send");
    }

    /// Sends one raw frame (e.g. a fragment of a message).
    pub async fn send_frame(&mut self, f: Frame) {
        self.stream
            .send(Message::Frame(f))
            .await
            .expect("websocket send");
    }

    /// The next JSON frame within `within` (pings skipped); None on timeout or close.
    pub async fn next_json(&mut self, within: Duration) -> Option<Value> {
        if self.ended.is_some() {
            return None;
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return None,
                Ok(m) => m,
            };
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).expect("server frames are JSON");
                    self.seen.push(v.clone());
                    return Some(v);
                }
                Some(Ok(Message::Close(f))) => {
                    self.ended = Some(Ended::Closed(f.map(|f| f.into_owned())));
                    return None;
                }
                Some(Ok(_)) => continue, // ping, pong, binary
                Some(Err(e)) => {
                    self.ended = Some(Ended::Dropped(e.to_string()));
                    return None;
                }
                None => {
                    self.ended = Some(Ended::Dropped("end of stream".into()));
                    return None;
                }
            }
        }
    }

    /// Reads until a frame matching `pred`; panics (listing what came) after `within`.
    pub async fn recv_until(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        let start = self.seen.len();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_json(left).await {
                Some(v) if pred(&v) => return v,
                Some(_) => {}
                None => panic!(
                    "no {what} within {within:?} (ended: {:?}); frames meanwhile: {:#?}",
                    self.ended,
                    &self.seen[start..]
                ),
            }
        }
    }

    /// Reads until a frame of `type` `ty`.
    pub async fn recv_type(&mut self, ty: &str, within: Duration) -> Value {
        self.recv_until(ty, within, |v| v["type"] == ty).await
    }

    /// Asserts that no frame matching `pred` arrives during `during`; returns what came.
    pub async fn expect_none(
        &mut self,
        what: &str,
        during: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + during;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return got;
            }
            match self.next_json(left).await {
                Some(v) => {
                    assert!(!pred(&v), "unexpected {what}: {v}");
                    got.push(v);
                }
                None => return got,
            }
        }
    }

    /// Waits until the server closes the socket; returns how.
    pub async fn wait_closed(&mut self, within: Duration) -> Ended {
        let deadline = Instant::now() + within;
        while self.ended.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the socket was not closed within {within:?}"
            );
            let _ = self.next_json(left).await;
        }
        self.ended.take().unwrap()
    }

    /// The close code the server sent (panics if it just dropped the connection).
    pub async fn close_code(&mut self, within: Duration) -> CloseCode {
        match self.wait_closed(within).await {
            Ended::Closed(Some(f)) => f.code,
            Ended::Closed(None) => panic!("a close frame without a code"),
            Ended::Dropped(why) => panic!("expected a close frame; the connection ended: {why}"),
        }
    }

    pub async fn close(&mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// Another's object: 403 or 404, never its data.
#[track_caller]
pub fn assert_denied(r: &Resp) {
    assert!(
        matches!(r.status.as_u16(), 403 | 404),
        "expected 403 or 404, got {}: {}",
        r.status,
        r.text
    );
    assert!(
        matches!(r.code(), "forbidden" | "not_found"),
        "code: {}",
        r.text
    );
    for leak in ["order_id", "total_cents", "customer_id", "dropoff", "items"] {
        assert!(
            r.body.get(leak).is_none(),
            "the refusal leaks {leak}: {}",
            r.text
        );
    }
}
