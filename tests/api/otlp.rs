//! Trace export (`otel.endpoint`): the server, run as its own process (its tracing is
//! process-wide), sends its request spans to a collector over OTLP HTTP/protobuf. The
//! collector here is a small actix-web app on a free port that decodes what arrives.

use actix_web::{web, App, HttpRequest, HttpServer};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the collector received: path, content type, body.
type Received = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A collector on 127.0.0.1:0; its base URL and what it received.
fn collector() -> (String, Received) {
    let got: Received = Arc::default();
    let store = got.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let store = store.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let store = store.clone();
            async move {
                let ct = req
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                store
                    .lock()
                    .unwrap()
                    .push((req.path().to_string(), ct, body.to_vec()));
                actix_web::HttpResponse::Ok()
                    .content_type("application/x-protobuf")
                    .finish()
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    (format!("http://127.0.0.1:{port}"), got)
}

/// The server binary exporting to `endpoint`; its base URL once it listens.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(endpoint: &str, schedule_delay_ms: u64) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dispatchd"))
            .env("DISPATCH_SERVER__BIND", "127.0.0.1:0")
            .env("DISPATCH_DEMO__ENABLED", "false")
            .env("DISPATCH_INGEST__OSMAND_BIND", "127.0.0.1:0")
            .env("DISPATCH_OTEL__ENDPOINT", endpoint)
            .env(
                "DISPATCH_OTEL__SCHEDULE_DELAY_MS",
                schedule_delay_ms.to_string(),
            )
            .env("RUST_LOG", "info")
            .env_remove("LOG_FORMAT")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("dispatchd starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url);
                    }
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("dispatchd says where it listens");
        Server { child, base }
    }

    /// SIGTERM, and wait for the process to end.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "dispatchd did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

/// Each exported request span: (`http.route`, `http.target`), and the service names.
fn request_spans(got: &Received) -> (Vec<(String, String)>, Vec<String>) {
    let mut spans = Vec::new();
    let mut services = Vec::new();
    for (path, ct, body) in got.lock().unwrap().iter() {
        assert_eq!(path, "/v1/traces");
        assert_eq!(ct, "application/x-protobuf");
        let req = ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
        for rs in &req.resource_spans {
            if let Some(r) = &rs.resource {
                services.extend(attr(&r.attributes, "service.name").map(str::to_string));
            }
            for s in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                if s.name == "HTTP request" {
                    let route = attr(&s.attributes, "http.route").unwrap_or_default();
                    let target = attr(&s.attributes, "http.target").unwrap_or_default();
                    spans.push((route.to_string(), target.to_string()));
                }
            }
        }
    }
    (spans, services)
}

async fn wait_for_route(got: &Received, route: &str) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (spans, _) = request_spans(got);
        if spans.iter().any(|(r, _)| r == route) {
            return spans;
        }
        assert!(
            Instant::now() < deadline,
            "no span of {route} exported; got {spans:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

#[actix_web::test]
async fn request_spans_reach_the_collector_without_secrets() {
    let (endpoint, got) = collector();
    let s = Server::start(&endpoint, 100);
    let client = reqwest::Client::new();
    let get = |path: String| client.get(format!("{}{path}", s.base)).send();
    assert_eq!(get("/healthz".into()).await.unwrap().status(), 200);
    // A share link's page and a socket's query carry secrets: they must not travel.
    assert_eq!(get(format!("/s/{SECRET}")).await.unwrap().status(), 404);
    assert_eq!(
        get(format!("/api/v1/shared?token={SECRET}"))
            .await
            .unwrap()
            .status(),
        404
    );
    let spans = wait_for_route(&got, "/healthz").await;
    let spans = if spans.iter().any(|(r, _)| r == "/api/v1/shared") {
        spans
    } else {
        wait_for_route(&got, "/api/v1/shared").await
    };
    let (_, services) = request_spans(&got);
    assert!(services.iter().all(|s| s == "dispatchd") && !services.is_empty());
    let targets: Vec<&str> = spans.iter().map(|(_, t)| t.as_str()).collect();
    assert!(targets.contains(&"/s/[redacted]"), "{targets:?}");
    assert!(
        targets.contains(&"/api/v1/shared?token=[redacted]"),
        "{targets:?}"
    );
    for (_, _, body) in got.lock().unwrap().iter() {
        let raw = String::from_utf8_lossy(body);
        assert!(!raw.contains(SECRET), "a token was exported");
    }
    s.stop();
}

#[actix_web::test]
async fn spans_still_queued_are_sent_when_the_server_stops() {
    let (endpoint, got) = collector();
    // A minute between scheduled exports: only the flush at shutdown can send these.
    let s = Server::start(&endpoint, 60_000);
    let r = reqwest::get(format!("{}/readyz", s.base)).await.unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        request_spans(&got).0.is_empty(),
        "nothing sent before the flush"
    );
    let stopping = actix_web::rt::task::spawn_blocking(move || s.stop());
    wait_for_route(&got, "/readyz").await;
    stopping.await.unwrap();
}
