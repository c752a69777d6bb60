//! The harness: one server per test on a free port (real HTTP and WebSockets), in this
//! process so a test can reach its state (e.g. to drain it). The clients and the actors
//! of the protocol are the shared ones in tests/support, re-exported here.

use actix_web::web;
use dispatchd::settings::Settings;
use dispatchd::startup::{AppState, Application};
use std::ops::Deref;

pub use crate::support::*;

pub const DISPATCHER_TOKEN: &str = "test-dispatcher-token";

/// A server of the test's own, and the client that talks to it (`Api`, by deref).
pub struct TestApp {
    pub api: Api,
    pub state: web::Data<AppState>,
    /// `http://127.0.0.1:PORT` of the ops listener, when `server.ops_bind` was set.
    pub ops_base: Option<String>,
    /// `http://127.0.0.1:PORT` of the OsmAnd listener (on a free port unless a test turns
    /// it off).
    pub osmand_base: Option<String>,
}

impl Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
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
    s.ingest.osmand_bind = "127.0.0.1:0".into();
    tweak(&mut s);
    s.validate().expect("test settings are valid");
    let app = Application::build(s).await.expect("the application starts");
    let api = Api::new(
        &format!("http://127.0.0.1:{}", app.port()),
        DISPATCHER_TOKEN,
    );
    let state = app.state();
    let ops_base = app.ops_port().map(|p| format!("http://127.0.0.1:{p}"));
    let osmand_base = app.osmand_port().map(|p| format!("http://127.0.0.1:{p}"));
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        api,
        state,
        ops_base,
        osmand_base,
    }
}

/// A server (see `spawn_app`) with one customer and one merchant at the shop.
pub async fn spawn_shop(tweak: impl FnOnce(&mut Settings)) -> (TestApp, Customer, Merchant) {
    let app = spawn_app(tweak).await;
    let c = app.customer().await;
    let m = app.merchant().await;
    (app, c, m)
}
