//! A webhook receiver for the tests: a real HTTP server (actix-web, on a thread and
//! System of its own, so it serves under any test runtime) that records every request and
//! answers 200, or 500 while told to fail. Signatures are checked here with hmac, as a
//! receiver would, independently of the server's own signing code.

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::Value;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: String,
    pub json: Value,
    /// What the receiver answered.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or("")
    }
}

#[derive(Default)]
struct Plan {
    got: Mutex<Vec<Received>>,
    /// Answer 500 to this many more requests...
    fail_next: AtomicU32,
    /// ...or to every request while set.
    fail_all: AtomicBool,
}

pub struct Receiver {
    pub port: u16,
    plan: Arc<Plan>,
    server: Option<actix_web::dev::ServerHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// A receiver on a free port.
    pub fn start() -> Receiver {
        Receiver::start_on(0)
    }

    /// A receiver on `port` (0: a free one).
    pub fn start_on(port: u16) -> Receiver {
        let plan = Arc::new(Plan::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = plan.clone();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let data = actix_web::web::Data::from(shared);
                let server = actix_web::HttpServer::new(move || {
                    actix_web::App::new()
                        .app_data(data.clone())
                        .default_service(actix_web::web::to(record))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(0)
                .bind(("127.0.0.1", port))
                .expect("the receiver binds");
                let bound = server.addrs()[0].port();
                let server = server.run();
                tx.send((bound, server.handle())).unwrap();
                let _ = server.await;
            });
        });
        let (port, handle) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the receiver starts");
        Receiver {
            port,
            plan,
            server: Some(handle),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    /// Answer 500 to the next `n` requests.
    pub fn fail_next(&self, n: u32) {
        self.plan.fail_next.store(n, Ordering::SeqCst);
    }

    /// Answer 500 to every request (true) or to none (false).
    pub fn fail_all(&self, on: bool) {
        self.plan.fail_all.store(on, Ordering::SeqCst);
    }

    /// Every request so far, in arrival order.
    pub fn all(&self) -> Vec<Received> {
        self.plan.got.lock().clone()
    }

    /// The requests answered 200.
    pub fn accepted(&self) -> Vec<Received> {
        self.all().into_iter().filter(|r| r.status == 200).collect()
    }

    /// Waits until `n` requests were answered 200; returns them.
    pub async fn wait_accepted(&self, n: usize, within: Duration) -> Vec<Received> {
        super::wait_for(&format!("{n} webhook deliveries"), within, || async {
            let got = self.accepted();
            (got.len() >= n).then_some(got)
        })
        .await
    }

    /// Stops serving: further deliveries find nothing listening.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(h) = self.server.take() {
            // The handle's future only needs some executor to be polled on.
            let _ =
                std::thread::spawn(move || actix_rt::System::new().block_on(h.stop(false))).join();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn record(
    req: actix_web::HttpRequest,
    body: actix_web::web::Bytes,
    plan: actix_web::web::Data<Plan>,
) -> actix_web::HttpResponse {
    let fail = plan.fail_all.load(Ordering::SeqCst)
        || plan
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    let status = if fail { 500 } else { 200 };
    let body = String::from_utf8_lossy(&body).to_string();
    plan.got.lock().push(Received {
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                let v = v.to_str().unwrap_or("").to_string();
                (k.as_str().to_ascii_lowercase(), v)
            })
            .collect(),
        json: serde_json::from_str(&body).unwrap_or(Value::Null),
        body,
        status,
    });
    actix_web::HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
}

/// Checks a `Dispatch-Signature` header (`t=…,v1=…`) as a receiver would: HMAC-SHA256 of
/// `"<t>.<body>"` under the secret, and a timestamp within 5 minutes of now.
#[track_caller]
pub fn assert_signed(r: &Received, secret: &str) {
    let header = r.header("dispatch-signature");
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_string()),
            Some(("v1", x)) => v1 = Some(x.to_string()),
            _ => {}
        }
    }
    let (t, v1) = (
        t.expect("t= in the signature"),
        v1.expect("v1= in the signature"),
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", r.body).as_bytes());
    let sig = hex::decode(&v1).expect("v1 is hex");
    assert!(
        mac.verify_slice(&sig).is_ok(),
        "bad signature {header} for body {}",
        r.body
    );
    let age_s = (super::now_ms() / 1000).abs_diff(t.parse::<u64>().unwrap());
    assert!(age_s < 300, "signature timestamp {t} is {age_s} s off");
}

impl super::Api {
    /// `POST /webhooks` as the dispatcher for `events` to `url`; returns the 201 body.
    pub async fn subscribe_webhook(&self, url: &str, events: &[&str]) -> Value {
        let body = serde_json::json!({"url": url, "events": events});
        self.post("/webhooks", Some(&self.dispatcher), &body)
            .await
            .expect(201)
    }
}
