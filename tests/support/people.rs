//! The actors of the protocol as tests drive them: customers, merchants and riders (the
//! rider with its socket, as the rider app would hold it).

use super::{now_ms, wait_for, Api, WsClient, T};
use serde_json::{json, Value};
use std::time::Duration;

pub struct Customer {
    pub id: String,
    pub token: String,
    pub username: String,
}

#[derive(Clone)]
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

impl Api {
    /// Connects the rider app with `token` and reads its welcome (whatever it says).
    pub async fn rider_socket(&self, id: &str, token: &str) -> (Rider, Value) {
        let path = format!("/ws/rider?token={token}");
        let (ws, welcome) = self.ws_with(&path, "welcome").await;
        assert_eq!(welcome["rider_id"], id);
        let rider = Rider {
            id: id.to_string(),
            token: token.to_string(),
            ws,
            pos: None,
            last_ts: 0,
        };
        (rider, welcome)
    }

    /// A connected rider that has not gone online yet (welcome read).
    pub async fn rider_connected(&self) -> Rider {
        let (id, token) = self.create_rider().await;
        let (rider, welcome) = self.rider_socket(&id, &token).await;
        assert_eq!(
            welcome["status"], "offline",
            "a new rider is offline: {welcome}"
        );
        assert_eq!(welcome["offer"], Value::Null);
        rider
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

    /// Sends an accept of `offer` (no answer awaited).
    pub async fn send_accept(&mut self, offer: &Value) {
        self.send(json!({"type": "accept", "offer_id": offer["offer_id"]}))
            .await;
    }

    /// Accepts `offer` and returns the `assigned` frame that answers it.
    pub async fn accept(&mut self, offer: &Value) -> Value {
        self.send_accept(offer).await;
        self.ws.recv_type("assigned", T).await
    }

    /// Accepts `offer` and expects it refused with `offer_not_available`.
    pub async fn accept_refused(&mut self, offer: &Value) {
        self.send_accept(offer).await;
        self.expect_error("offer_not_available").await;
    }

    /// Waits for the offer of `order_id`, accepts it and reads `assigned`; returns the offer.
    pub async fn take_order(&mut self, order_id: &str) -> Value {
        let offer = self.expect_offer().await;
        assert_eq!(offer["order_id"], order_id);
        self.accept(&offer).await;
        offer
    }

    /// Reports `kind` (`picked_up`, `delivered`, `release`) about an order it holds.
    pub async fn report(&mut self, kind: &str, order_id: &str) {
        self.send(json!({"type": kind, "order_id": order_id})).await;
    }

    /// Reads until an `error` frame and checks its code; returns the frame.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let err = self.ws.recv_type("error", T).await;
        assert_eq!(err["code"], code, "{err}");
        err
    }
}
