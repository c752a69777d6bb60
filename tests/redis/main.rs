//! The Redis backend against a real Redis: the `dispatchd` binary runs as a child process
//! (so it can be killed with SIGKILL), with `store.backend = "redis"` and a key prefix of
//! its own per test. Needs Redis on 127.0.0.1:6379 (`.ci/run` starts one) and, for the
//! outage test, `redis-server` on PATH (it runs its own instance on a free port).

use dispatch_actors::store::redis::{RedisConfig, RedisStore};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const DISPATCHER: &str = "redis-test-dispatcher";
const SHOP: (f64, f64) = (31.2304, 121.4737);
const HOME: (f64, f64) = (31.2420, 121.4850);
const MAIN_REDIS: &str = "redis://127.0.0.1:6379/0";

static SEQ: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn unique_prefix() -> String {
    format!(
        "dispatch-test:{}-{}-{}:",
        std::process::id(),
        now_ms() % 1_000_000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn offset(from: (f64, f64), north_m: f64, east_m: f64) -> (f64, f64) {
    let lat = from.0 + north_m / 111_195.0;
    let lon = from.1 + east_m / (111_195.0 * from.0.to_radians().cos());
    (lat, lon)
}

/// These tests need the Redis that `.ci/run` starts; say so plainly when it is missing.
fn require_redis() {
    let up = Command::new("redis-cli")
        .arg("ping")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"));
    assert!(
        up,
        "these tests need Redis on 127.0.0.1:6379 and redis-server/redis-cli on PATH \
         (.ci/run starts it; or: redis-server --daemonize yes --save '' --appendonly no)"
    );
}

/// One `dispatchd` process.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts the binary with the redis backend on `prefix`; returns once it has bound.
    fn start(redis_url: &str, prefix: &str, env: &[(&str, &str)]) -> Server {
        require_redis();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dispatchd"));
        cmd.env("DISPATCH_STORE__BACKEND", "redis")
            .env("DISPATCH_STORE__REDIS_URL", redis_url)
            .env("DISPATCH_STORE__REDIS_PREFIX", prefix)
            .env("DISPATCH_SERVER__BIND", "127.0.0.1:0")
            .env("DISPATCH_DEMO__ENABLED", "false")
            .env("DISPATCH_AUTH__DISPATCHER_TOKEN", DISPATCHER)
            .env("RUST_LOG", "info,dispatch_actors=info,actix_server=warn")
            .env_remove("LOG_FORMAT")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("dispatchd starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.trim().to_string());
                    }
                }
                if line.contains("recovered from redis") || line.contains("panicked") {
                    eprintln!("[dispatchd] {line}");
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("dispatchd logs its address");
        Server { child, base }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn ws(&self, path: &str) -> String {
        self.url(path).replacen("http://", "ws://", 1)
    }

    fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    async fn wait_ready(&self, within: Duration) {
        let c = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = c.get(self.url("/readyz")).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "not ready within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deletes the test's keys when it ends, however it ends.
struct Cleanup(Option<RedisStore>);

impl Cleanup {
    async fn new(url: &str, prefix: &str) -> Cleanup {
        let store = RedisStore::open(RedisConfig {
            url: url.into(),
            prefix: prefix.into(),
            ..Default::default()
        })
        .unwrap();
        Cleanup(Some(store))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            let handle = tokio::runtime::Handle::current();
            let _ = std::thread::spawn(move || {
                let _ = handle.block_on(s.delete_all());
            })
            .join();
        }
    }
}

async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut rb = c.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("request sent");
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(
    c: &reqwest::Client,
    s: &Server,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    call(c, reqwest::Method::POST, s.url(path), token, Some(body)).await
}

async fn get(c: &reqwest::Client, s: &Server, path: &str, token: &str) -> (StatusCode, Value) {
    call(c, reqwest::Method::GET, s.url(path), token, None).await
}

/// A merchant with one item: (merchant_id, merchant token, item_id).
async fn merchant(c: &reqwest::Client, s: &Server) -> (String, String, String) {
    let (st, m) = post(
        c,
        s,
        "/api/v1/merchants",
        DISPATCHER,
        json!({"name": "Noodles", "location": {"lat": SHOP.0, "lon": SHOP.1}, "prep_time_s": 0}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    let id = m["merchant_id"].as_str().unwrap().to_string();
    let token = m["token"].as_str().unwrap().to_string();
    let (st, item) = post(
        c,
        s,
        &format!("/api/v1/merchants/{id}/items"),
        &token,
        json!({"name": "Dumplings", "price_cents": 1200}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{item}");
    (id, token, item["item_id"].as_str().unwrap().to_string())
}

async fn customer(c: &reqwest::Client, s: &Server) -> (String, String) {
    let name = format!("ann{}", SEQ.fetch_add(1, Ordering::Relaxed));
    let (st, v) = post(
        c,
        s,
        "/api/v1/customers",
        "",
        json!({"username": name, "password": "secret-pass"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    (
        v["customer_id"].as_str().unwrap().to_string(),
        v["token"].as_str().unwrap().to_string(),
    )
}

async fn rider(c: &reqwest::Client, s: &Server, name: &str) -> (String, String) {
    let (st, v) = post(c, s, "/api/v1/riders", DISPATCHER, json!({ "name": name })).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    (
        v["rider_id"].as_str().unwrap().to_string(),
        v["token"].as_str().unwrap().to_string(),
    )
}

fn order_body(merchant_id: &str, item_id: &str) -> Value {
    json!({"merchant_id": merchant_id, "items": [{"item_id": item_id, "qty": 2}],
           "dropoff": {"lat": HOME.0, "lon": HOME.1}})
}

async fn new_order(c: &reqwest::Client, s: &Server, cust: &str, m: &str, item: &str) -> String {
    let (st, o) = post(c, s, "/api/v1/orders", cust, order_body(m, item)).await;
    assert_eq!(st, StatusCode::CREATED, "{o}");
    o["order_id"].as_str().unwrap().to_string()
}

/// The customer pays and the merchant accepts: dispatch starts.
async fn pay_and_accept(c: &reqwest::Client, s: &Server, id: &str, cust: &str, merchant: &str) {
    let pay = format!("/api/v1/orders/{id}/pay");
    post(c, s, &pay, cust, json!({"payment_ref": "p"})).await;
    let accept = format!("/api/v1/orders/{id}/accept");
    expect_ok("accept", post(c, s, &accept, merchant, json!({})).await).await;
}

async fn expect_ok(what: &str, r: (StatusCode, Value)) -> Value {
    assert_eq!(r.0, StatusCode::OK, "{what}: {}", r.1);
    r.1
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct RiderApp {
    ws: Ws,
}

impl RiderApp {
    async fn connect(s: &Server, token: &str) -> (RiderApp, Value) {
        let (ws, _) = tokio_tungstenite::connect_async(s.ws(&format!("/ws/rider?token={token}")))
            .await
            .expect("rider socket");
        let mut app = RiderApp { ws };
        let welcome = app.next_of("welcome").await;
        (app, welcome)
    }

    async fn send(&mut self, v: Value) {
        self.ws.send(Message::Text(v.to_string())).await.unwrap();
    }

    async fn online_at(&mut self, at: (f64, f64)) {
        self.send(json!({"type": "status", "status": "online"}))
            .await;
        self.send(json!({"type": "location", "lat": at.0, "lon": at.1, "ts_ms": now_ms()}))
            .await;
    }

    /// The next frame of type `kind` (others are skipped), within 10 s.
    async fn next_of(&mut self, kind: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = tokio::time::timeout(left, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no {kind} frame within 10 s"))
                .expect("socket open")
                .expect("frame");
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == kind {
                    return v;
                }
                if v["type"] == "error" {
                    eprintln!("rider got error frame: {v}");
                }
            }
        }
    }
}

/// Accept criterion 1: orders in every state, open offers, riders holding orders and a
/// pending timer survive `kill -9`; a timer due during the downtime fires right after
/// start; an idempotent retry after the restart returns the original response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_restores_everything() {
    let prefix = unique_prefix();
    let _cleanup = Cleanup::new(MAIN_REDIS, &prefix).await;
    let env = [
        ("DISPATCH_TIMERS__MERCHANT_ACCEPT_S", "4"),
        ("DISPATCH_TIMERS__OFFER_TTL_S", "60"),
        ("DISPATCH_TIMERS__RIDER_SILENT_S", "600"),
        ("DISPATCH_TIMERS__RIDER_LOST_S", "1200"),
    ];
    let s = Server::start(MAIN_REDIS, &prefix, &env);
    s.wait_ready(Duration::from_secs(10)).await;
    let c = reqwest::Client::new();
    let (m, mtok, item) = merchant(&c, &s).await;
    let (_cust, ctok) = customer(&c, &s).await;
    let near = offset(SHOP, 200.0, 0.0);

    // Rider 1 delivers one order, then holds another (assigned).
    let (r1, r1tok) = rider(&c, &s, "Ru").await;
    let (mut app1, _) = RiderApp::connect(&s, &r1tok).await;
    app1.online_at(near).await;
    let delivered = new_order(&c, &s, &ctok, &m, &item).await;
    let assigned = new_order(&c, &s, &ctok, &m, &item).await;
    for (id, last) in [(&delivered, "delivered"), (&assigned, "assigned")] {
        pay_and_accept(&c, &s, id, &ctok, &mtok).await;
        let offer = app1.next_of("offer").await;
        assert_eq!(offer["order_id"], id.as_str());
        app1.send(json!({"type": "accept", "offer_id": offer["offer_id"]}))
            .await;
        app1.next_of("assigned").await;
        if last == "delivered" {
            app1.send(json!({"type": "picked_up", "order_id": id}))
                .await;
            app1.next_of("order_updated").await;
            app1.send(json!({"type": "delivered", "order_id": id}))
                .await;
            app1.next_of("order_updated").await;
        }
    }
    // Rider 2 holds a picked-up order.
    let (r2, r2tok) = rider(&c, &s, "Rv").await;
    let (mut app2, _) = RiderApp::connect(&s, &r2tok).await;
    app2.online_at(near).await;
    let picked = new_order(&c, &s, &ctok, &m, &item).await;
    pay_and_accept(&c, &s, &picked, &ctok, &mtok).await;
    let offer = app2.next_of("offer").await;
    app2.send(json!({"type": "accept", "offer_id": offer["offer_id"]}))
        .await;
    app2.next_of("assigned").await;
    app2.send(json!({"type": "picked_up", "order_id": picked}))
        .await;
    app2.next_of("order_updated").await;
    // Rider 3 holds an open offer it does not answer.
    let (r3, r3tok) = rider(&c, &s, "Rw").await;
    let (mut app3, _) = RiderApp::connect(&s, &r3tok).await;
    app3.online_at(near).await;
    let offered = new_order(&c, &s, &ctok, &m, &item).await;
    pay_and_accept(&c, &s, &offered, &ctok, &mtok).await;
    let open_offer = app3.next_of("offer").await;
    assert_eq!(open_offer["order_id"], offered.as_str());
    // Pending payment, cancelled, and (idempotently created) pending.
    let pending = new_order(&c, &s, &ctok, &m, &item).await;
    let cancelled = new_order(&c, &s, &ctok, &m, &item).await;
    expect_ok(
        "cancel",
        post(
            &c,
            &s,
            &format!("/api/v1/orders/{cancelled}/cancel"),
            &ctok,
            json!({}),
        )
        .await,
    )
    .await;
    let idem = c
        .post(s.url("/api/v1/orders"))
        .bearer_auth(&ctok)
        .header("Idempotency-Key", "kill-9-key")
        .json(&order_body(&m, &item))
        .send()
        .await
        .unwrap();
    assert_eq!(idem.status(), StatusCode::CREATED);
    let idem_body = idem.text().await.unwrap();
    // Paid last: its merchant_accept timer (4 s) falls due while the server is down (and
    // the order is cancelled at 2x, 8 s: well after the checks below).
    let paid = new_order(&c, &s, &ctok, &m, &item).await;
    let paid_at = Instant::now();
    expect_ok(
        "pay",
        post(
            &c,
            &s,
            &format!("/api/v1/orders/{paid}/pay"),
            &ctok,
            json!({"payment_ref": "p"}),
        )
        .await,
    )
    .await;

    let all = [
        &delivered, &assigned, &picked, &offered, &pending, &cancelled, &paid,
    ];
    let mut before = Vec::new();
    for id in all {
        before.push(
            expect_ok(
                "get",
                get(&c, &s, &format!("/api/v1/orders/{id}"), DISPATCHER).await,
            )
            .await,
        );
    }
    let statuses: Vec<&str> = before
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "delivered",
            "assigned",
            "picked_up",
            "accepted",
            "pending_payment",
            "cancelled",
            "paid"
        ]
    );
    // Background writes (offers, rider views) are batched: let the last ones land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Deadlines are in a sorted set by due time; events in a stream read by groups.
    let mut conn = redis::Client::open(MAIN_REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let due: Option<u64> = redis::cmd("ZSCORE")
        .arg(format!("{prefix}timers"))
        .arg(format!("{paid}|merchant_accept"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let paid_ms = before[6]["timeline"][1]["at_ms"].as_u64().unwrap();
    assert_eq!(
        due,
        Some(paid_ms + 4000),
        "merchant_accept deadline in the timers zset"
    );
    let offer_due: Option<u64> = redis::cmd("ZSCORE")
        .arg(format!("{prefix}timers"))
        .arg(format!(
            "{offered}|offer_ttl:{}",
            open_offer["offer_id"].as_str().unwrap()
        ))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(offer_due, open_offer["expires_at_ms"].as_u64());
    let gone: Option<u64> = redis::cmd("ZSCORE")
        .arg(format!("{prefix}timers"))
        .arg(format!("{delivered}|delivery_timeout"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(gone, None, "a final order keeps no deadline");
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(format!("{prefix}events"))
        .arg("test-group")
        .arg("0")
        .query_async(&mut conn)
        .await
        .unwrap();
    let read: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("test-group")
        .arg("c1")
        .arg("COUNT")
        .arg(1000)
        .arg("STREAMS")
        .arg(format!("{prefix}events"))
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    let text = format!("{read:?}");
    for kind in [
        "order_changed",
        "offer_sent",
        "offer_closed",
        "rider_changed",
        "merchant_changed",
    ] {
        assert!(text.contains(kind), "no {kind} in the event stream");
    }
    drop((app1, app2, app3));
    s.kill9();

    // Down until the paid order's merchant_accept deadline has passed.
    tokio::time::sleep(Duration::from_millis(4300).saturating_sub(paid_at.elapsed())).await;
    let s = Server::start(MAIN_REDIS, &prefix, &env);
    s.wait_ready(Duration::from_secs(10)).await;
    let ready_at = Instant::now();

    for (id, old) in all.iter().zip(&before) {
        let now = expect_ok(
            "get after restart",
            get(&c, &s, &format!("/api/v1/orders/{id}"), &ctok).await,
        )
        .await;
        for k in [
            "status",
            "version",
            "rider_id",
            "total_cents",
            "ready_at_ms",
            "timeline",
        ] {
            assert_eq!(now[k], old[k], "{k} of {id} after restart");
        }
    }
    // The timer that fell due during the downtime fires right after start.
    let esc = loop {
        let (_, list) = get(&c, &s, "/api/v1/escalations?open=true", DISPATCHER).await;
        if let Some(e) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "merchant_unresponsive" && e["order_id"] == paid.as_str())
        {
            break e.clone();
        }
        assert!(
            ready_at.elapsed() < Duration::from_secs(2),
            "merchant_unresponsive not raised: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(esc["level"], 1);
    // Riders reconnect with their old tokens and are welcomed with what they hold.
    let (_a1, w1) = RiderApp::connect(&s, &r1tok).await;
    assert_eq!(w1["rider_id"], r1.as_str());
    assert_eq!(w1["status"], "busy", "{w1}");
    assert_eq!(w1["orders"].as_array().unwrap().len(), 1, "{w1}");
    assert_eq!(w1["orders"][0]["order_id"], assigned.as_str());
    assert_eq!(w1["orders"][0]["status"], "assigned");
    let (_a2, w2) = RiderApp::connect(&s, &r2tok).await;
    assert_eq!(w2["rider_id"], r2.as_str());
    assert_eq!(w2["orders"][0]["order_id"], picked.as_str());
    assert_eq!(w2["orders"][0]["status"], "picked_up");
    let (_a3, w3) = RiderApp::connect(&s, &r3tok).await;
    assert_eq!(w3["rider_id"], r3.as_str());
    assert_eq!(w3["status"], "offered", "{w3}");
    assert_eq!(w3["offer"]["offer_id"], open_offer["offer_id"], "{w3}");
    assert_eq!(w3["offer"]["expires_at_ms"], open_offer["expires_at_ms"]);
    // The idempotent retry replays the original response.
    let retry = c
        .post(s.url("/api/v1/orders"))
        .bearer_auth(&ctok)
        .header("Idempotency-Key", "kill-9-key")
        .json(&order_body(&m, &item))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.text().await.unwrap(), idem_body);
    // The restored order moves on: the rider picks it up.
    let mut a1 = _a1;
    a1.send(json!({"type": "picked_up", "order_id": assigned}))
        .await;
    let upd = a1.next_of("order_updated").await;
    assert_eq!(upd["order"]["status"], "picked_up");
    assert_eq!(
        upd["order"]["version"].as_u64().unwrap(),
        before[1]["version"].as_u64().unwrap() + 1
    );
    // The merchant's token survived too.
    let (st, _) = call(
        &c,
        reqwest::Method::PUT,
        s.url(&format!("/api/v1/merchants/{m}/open")),
        &mtok,
        Some(json!({"open": true})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    s.kill9();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Redis of the test's own, with an append-only file so a stop loses nothing.
struct OwnRedis {
    port: u16,
    dir: std::path::PathBuf,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("dispatch-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let r = OwnRedis { port, dir };
        r.run();
        r
    }

    fn run(&self) {
        let st = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--daemonize", "yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-server on PATH");
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.ping() {
            assert!(Instant::now() < deadline, "own redis did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ping(&self) -> bool {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "ping"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
    }

    /// Stops it (the append-only file keeps what it acknowledged).
    fn stop(&self) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "shutdown"])
            .output();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.ping() {
            assert!(Instant::now() < deadline, "own redis did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "shutdown", "nosave"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Accept criterion 2: Redis stops during load → 503s (nothing acknowledged that is not
/// stored), no panic, GPS keeps flowing; Redis back → ready again, every acknowledged
/// order is there, and the latest position is flushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_answers_503_and_loses_nothing_acknowledged() {
    let redis = OwnRedis::start();
    let prefix = unique_prefix();
    let mut s = Server::start(&redis.url(), &prefix, &[]);
    s.wait_ready(Duration::from_secs(10)).await;
    let c = reqwest::Client::new();
    let (m, _mtok, item) = merchant(&c, &s).await;
    let (_cust, ctok) = customer(&c, &s).await;
    let (r, rtok) = rider(&c, &s, "Rx").await;
    let (mut app, _) = RiderApp::connect(&s, &rtok).await;
    // Far from the shop: no offers, just GPS.
    let far = offset(SHOP, 40_000.0, 0.0);
    app.online_at(far).await;

    // Load: a steady stream of order creations and payments while Redis goes away and
    // comes back. Every 2xx is recorded as acknowledged.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (c, base, ctok, m, item, stop) = (
            c.clone(),
            s.base.clone(),
            ctok.clone(),
            m.clone(),
            item.clone(),
            stop.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut acked: Vec<(String, &'static str)> = Vec::new();
            let mut refused = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let r = c
                    .post(format!("{base}/api/v1/orders"))
                    .bearer_auth(&ctok)
                    .json(&order_body(&m, &item))
                    .send()
                    .await;
                let Ok(r) = r else { continue };
                match r.status() {
                    StatusCode::CREATED => {
                        let o: Value = r.json().await.unwrap();
                        let id = o["order_id"].as_str().unwrap().to_string();
                        let p = c
                            .post(format!("{base}/api/v1/orders/{id}/pay"))
                            .bearer_auth(&ctok)
                            .json(&json!({"payment_ref": "p"}))
                            .send()
                            .await;
                        match p.map(|p| p.status()) {
                            Ok(StatusCode::OK) => acked.push((id, "paid")),
                            Ok(StatusCode::SERVICE_UNAVAILABLE) => {
                                refused += 1;
                                acked.push((id, "pending_payment"))
                            }
                            other => panic!("pay answered {other:?}"),
                        }
                    }
                    StatusCode::SERVICE_UNAVAILABLE => refused += 1,
                    other => panic!("create answered {other}"),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (acked, refused)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.stop();
    // readyz turns 503 and state changes are refused.
    let t0 = Instant::now();
    loop {
        let st = c.get(s.url("/readyz")).send().await.unwrap().status();
        if st == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(3), "readyz still {st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (st, body) = post(&c, &s, "/api/v1/orders", &ctok, order_body(&m, &item)).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    // GPS keeps flowing in memory.
    let mut last = far;
    for i in 1..=5 {
        // 3 m per ~100 ms: well under gps.max_speed_mps.
        last = offset(far, 3.0 * i as f64, 0.0);
        app.send(json!({"type": "location", "lat": last.0, "lon": last.1, "ts_ms": now_ms()}))
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, riders) = get(&c, &s, "/api/v1/riders", DISPATCHER).await;
    let view = riders
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rider_id"] == r.as_str())
        .unwrap();
    assert!(
        (view["location"]["lat"].as_f64().unwrap() - last.0).abs() < 1e-9,
        "{view}"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(s.alive(), "dispatchd died during the outage");

    redis.run();
    s.wait_ready(Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    let mut refused = 0;
    for w in workers {
        let (a, r) = w.await.unwrap();
        acked.extend(a);
        refused += r;
    }
    assert!(refused > 0, "the outage refused nothing");
    assert!(acked.len() > 10, "too little load: {}", acked.len());
    assert!(s.alive(), "dispatchd died");

    // Every acknowledged order is in Redis with at least the acknowledged status; so is
    // the latest position.
    let store = RedisStore::open(RedisConfig {
        url: redis.url(),
        prefix: prefix.clone(),
        ..Default::default()
    })
    .unwrap();
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for (id, status) in &acked {
        let data: Option<String> = redis::cmd("HGET")
            .arg(format!("{prefix}order:{id}"))
            .arg("data")
            .query_async(&mut conn)
            .await
            .unwrap();
        let data = data.unwrap_or_else(|| panic!("acknowledged order {id} missing from redis"));
        let v: Value = serde_json::from_str(&data).unwrap();
        if *status == "paid" {
            assert_eq!(v["order"]["status"], "paid", "{id}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let pos: Option<String> = redis::cmd("HGET")
            .arg(format!("{prefix}positions"))
            .arg(&r)
            .query_async(&mut conn)
            .await
            .unwrap();
        let lat: Option<f64> = pos
            .as_deref()
            .and_then(|p| p.split(',').next()?.parse().ok());
        if lat.is_some_and(|lat| (lat - last.0).abs() < 1e-9) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "latest position not flushed: {pos:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // …and GEOADD makes it visible to ordinary Redis tools.
    let near: Vec<String> = redis::cmd("GEOSEARCH")
        .arg(format!("{prefix}geo"))
        .arg("FROMLONLAT")
        .arg(last.1)
        .arg(last.0)
        .arg("BYRADIUS")
        .arg(100)
        .arg("m")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(near, vec![r.clone()]);
    // Ready and writable again.
    let (st, _) = post(&c, &s, "/api/v1/orders", &ctok, order_body(&m, &item)).await;
    assert_eq!(st, StatusCode::CREATED);
    drop(store);
    s.kill9();
}

/// Accept criterion 3: two engine processes on one Redis cannot both assign one order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_cannot_both_assign_one_order() {
    let prefix = unique_prefix();
    let _cleanup = Cleanup::new(MAIN_REDIS, &prefix).await;
    // No automatic offers: the rider stays out of range.
    let env = [
        ("DISPATCH_DISPATCH__INITIAL_RADIUS_M", "500"),
        ("DISPATCH_DISPATCH__MAX_RADIUS_M", "1000"),
    ];
    let a = Server::start(MAIN_REDIS, &prefix, &env);
    a.wait_ready(Duration::from_secs(10)).await;
    let c = reqwest::Client::new();
    let (m, mtok, item) = merchant(&c, &a).await;
    let (_cust, ctok) = customer(&c, &a).await;
    let (r, rtok) = rider(&c, &a, "Ry").await;
    let mut orders = Vec::new();
    for _ in 0..4 {
        let id = new_order(&c, &a, &ctok, &m, &item).await;
        pay_and_accept(&c, &a, &id, &ctok, &mtok).await;
        orders.push(id);
    }
    // The second engine starts on the same Redis and recovers the same orders.
    let b = Server::start(MAIN_REDIS, &prefix, &env);
    b.wait_ready(Duration::from_secs(10)).await;
    // The rider is connected to both.
    let far = offset(SHOP, 10_000.0, 0.0);
    let (mut on_a, _) = RiderApp::connect(&a, &rtok).await;
    on_a.online_at(far).await;
    let (mut on_b, _) = RiderApp::connect(&b, &rtok).await;
    on_b.online_at(far).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    for (i, id) in orders.iter().enumerate() {
        let path = format!("/api/v1/orders/{id}/assign");
        let body = json!({ "rider_id": r });
        // Alternate who goes first; both requests race.
        let (first, second) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (x, y) = tokio::join!(
            post(&c, first, &path, DISPATCHER, body.clone()),
            post(&c, second, &path, DISPATCHER, body.clone())
        );
        let wins = [x.0, y.0].iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(wins, 1, "order {id}: {} / {}: {} {}", x.0, y.0, x.1, y.1);
        let loser = if x.0 == StatusCode::OK { &y } else { &x };
        assert_eq!(loser.0, StatusCode::CONFLICT, "{}", loser.1);
        let winner = if x.0 == StatusCode::OK { &x.1 } else { &y.1 };
        assert_eq!(winner["status"], "assigned");
        // What Redis holds is the winner's version.
        let stored = expect_ok(
            "get",
            get(&c, first, &format!("/api/v1/orders/{id}"), DISPATCHER).await,
        )
        .await;
        let stored_b = expect_ok(
            "get",
            get(&c, second, &format!("/api/v1/orders/{id}"), DISPATCHER).await,
        )
        .await;
        let mut conn = redis::Client::open(MAIN_REDIS)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let v: u64 = redis::cmd("HGET")
            .arg(format!("{prefix}order:{id}"))
            .arg("version")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(v, winner["version"].as_u64().unwrap());
        assert!(stored["status"] == "assigned" || stored_b["status"] == "assigned");
    }
    a.kill9();
    b.kill9();
}

/// The store alone: compare-and-set between two writers, first-response-wins
/// idempotency, and the recovery snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_compare_and_set_idempotency_and_snapshot() {
    use dispatch_actors::domain::order::{NewOrder, Order, OrderLine, Pickup};
    use dispatch_actors::domain::{CustomerId, GeoPoint, ItemId, MerchantId, OrderId};
    use dispatch_actors::store::{OrderRecord, Store, StoreError, StoredResponse};
    require_redis();
    let prefix = unique_prefix();
    let _cleanup = Cleanup::new(MAIN_REDIS, &prefix).await;
    let open = || async {
        let s = RedisStore::open(RedisConfig {
            url: MAIN_REDIS.into(),
            prefix: prefix.clone(),
            ..Default::default()
        })
        .unwrap();
        let t = Instant::now();
        while !s.reachable() {
            assert!(t.elapsed() < Duration::from_secs(5), "redis not reachable");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        s.mark_recovered();
        s
    };
    let (a, b) = (open().await, open().await);
    assert_ne!(a.node_id(), b.node_id());
    let m = MerchantId::generate();
    let mut order = Order::new(
        NewOrder {
            order_id: OrderId::generate(),
            customer_id: CustomerId::generate(),
            merchant_id: m.clone(),
            items: vec![OrderLine {
                item_id: ItemId::generate(),
                name: "x".into(),
                qty: 1,
                price_cents: 100,
            }],
            pickup: Pickup {
                lat: SHOP.0,
                lon: SHOP.1,
                merchant_id: m,
                name: "m".into(),
            },
            dropoff: GeoPoint::new(HOME.0, HOME.1).unwrap(),
        },
        1,
    );
    let rec = |o: &Order, base: u64| {
        let mut r = OrderRecord::bare(o.clone());
        r.base_version = base;
        r
    };
    // A creates (base 0) and moves it to v2.
    a.save_order_record(&rec(&order, 0)).await.unwrap();
    order.version = 2;
    a.save_order_record(&rec(&order, 0)).await.unwrap();
    // B took it over at v1: v2 is stored, so B's v2 conflicts.
    assert!(matches!(
        b.save_order_record(&rec(&order, 1)).await,
        Err(StoreError::Conflict(_))
    ));
    // B took it over at v2 (what is stored): its v3 wins, and now A's v3 conflicts.
    order.version = 3;
    b.save_order_record(&rec(&order, 2)).await.unwrap();
    assert!(matches!(
        a.save_order_record(&rec(&order, 0)).await,
        Err(StoreError::Conflict(_))
    ));
    // A late, older write of the owner is skipped, never stored over a newer one.
    order.version = 2;
    b.save_order_record(&rec(&order, 2)).await.unwrap();
    assert_eq!(
        a.load_order(&order.order_id)
            .await
            .unwrap()
            .unwrap()
            .version,
        3
    );
    // The snapshot has the live order, with the stored version as its base.
    let snap = a.load_snapshot().await.unwrap();
    assert_eq!(snap.orders.len(), 1);
    assert_eq!(snap.orders[0].base_version, 3);
    // Idempotency: the first response stays.
    let r = |body: &str| StoredResponse {
        body_hash: 7,
        status: 201,
        body: body.into(),
    };
    let ttl = Duration::from_secs(60);
    assert_eq!(
        a.put_idempotent("idem:k", r("first"), ttl).await.unwrap(),
        r("first")
    );
    assert_eq!(
        b.put_idempotent("idem:k", r("second"), ttl).await.unwrap(),
        r("first")
    );
    assert_eq!(b.get_idempotent("idem:k").await.unwrap(), Some(r("first")));
    assert_eq!(b.get_idempotent("idem:other").await.unwrap(), None);
}
