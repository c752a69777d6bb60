//! The REST side: one `Api` per server, and `Resp`, what a call answered.

use super::people::{Customer, Merchant};
use super::{unique, WsClient, HOME, SHOP};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A client for one running server: its addresses and the dispatcher's token.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub ws_base: String,
    pub dispatcher: String,
    pub client: reqwest::Client,
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
        self.expect_code(status, code, "");
        assert!(
            self.body["error"]["message"].is_string(),
            "error without a message: {}",
            self.text
        );
    }

    /// Status and error code only; `what` names the call in the failure message.
    #[track_caller]
    pub fn expect_code(&self, status: u16, code: &str, what: &str) {
        assert!(
            self.status.as_u16() == status && self.code() == code,
            "{what}: expected {status} {code}, got {} {}",
            self.status,
            self.text
        );
    }
}

impl Api {
    /// A client for the server at `base` (`http://host:port`).
    pub fn new(base: &str, dispatcher: &str) -> Api {
        Api {
            base: base.to_string(),
            ws_base: base.replacen("http://", "ws://", 1),
            dispatcher: dispatcher.to_string(),
            client: reqwest::Client::new(),
        }
    }

    /// Sends a request; `body` None sends no body, `headers` are extra headers. Paths are
    /// under /api/v1 except the operations endpoints.
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

    /// A JSON body sent with `method`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Resp {
        let bytes = Some(body.to_string().into_bytes());
        self.raw(method, path, token, bytes, headers).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.raw(Method::GET, path, token, None, &[]).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.call(Method::POST, path, token, body, &[]).await
    }

    pub async fn post_with_key(&self, path: &str, token: &str, key: &str, body: &Value) -> Resp {
        let key = [("idempotency-key", key)];
        self.call(Method::POST, path, Some(token), body, &key).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.call(Method::PUT, path, token, body, &[]).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.call(Method::PATCH, path, token, body, &[]).await
    }

    /// `POST /orders/{id}/{action}` (pay, accept, cancel, assign, …) as `token`.
    pub async fn order_call(&self, id: &str, action: &str, token: &str, body: Value) -> Resp {
        let path = format!("/orders/{id}/{action}");
        self.post(&path, Some(token), &body).await
    }

    /// The dispatcher assigns `rider_id`.
    pub async fn assign(&self, id: &str, rider_id: &str) -> Resp {
        let body = json!({ "rider_id": rider_id });
        self.order_call(id, "assign", &self.dispatcher, body).await
    }

    /// `PUT /merchants/{id}/open` with the merchant's own token.
    pub async fn set_open(&self, m: &Merchant, open: bool) -> Resp {
        let path = format!("/merchants/{}/open", m.id);
        self.put(&path, Some(&m.token), &json!({ "open": open }))
            .await
    }

    // ---- actors of the protocol ----

    /// `POST /customers`: registers a customer.
    pub async fn register(&self, username: &str, password: &str) -> Resp {
        let body = json!({"username": username, "password": password});
        self.post("/customers", None, &body).await
    }

    /// `POST /sessions`: a customer logs in.
    pub async fn login(&self, username: &str, password: &str) -> Resp {
        let body = json!({"username": username, "password": password});
        self.post("/sessions", None, &body).await
    }

    /// A new customer (password `correct horse`).
    pub async fn customer(&self) -> Customer {
        let username = unique("cust");
        let r = self.register(&username, "correct horse").await.expect(201);
        Customer {
            id: r["customer_id"].as_str().unwrap().to_string(),
            token: r["token"].as_str().unwrap().to_string(),
            username,
        }
    }

    /// A merchant at `at` (prep time 0, so food is ready at accept) with one item.
    pub async fn merchant_at(&self, at: (f64, f64), price_cents: i64) -> Merchant {
        let body = json!({"name": unique("Noodle Bar "), "location": {"lat": at.0, "lon": at.1}, "prep_time_s": 0});
        let r = self
            .post("/merchants", Some(&self.dispatcher), &body)
            .await
            .expect(201);
        assert_eq!(r["merchant"]["open"], true);
        let id = r["merchant_id"].as_str().unwrap().to_string();
        let token = r["token"].as_str().unwrap().to_string();
        let item = json!({"name": "dan dan noodles", "price_cents": price_cents});
        let item = self
            .post(&format!("/merchants/{id}/items"), Some(&token), &item)
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

    /// Places an order and returns its id.
    pub async fn placed_order(&self, c: &Customer, m: &Merchant) -> String {
        let o = self.order(c, m).await;
        o["order_id"].as_str().unwrap().to_string()
    }

    pub async fn pay(&self, c: &Customer, order_id: &str) -> Value {
        let body = json!({"payment_ref": "pay_123"});
        let o = self.order_call(order_id, "pay", &c.token, body).await;
        let o = o.expect(200);
        assert_eq!(o["status"], "paid");
        o
    }

    pub async fn accept(&self, m: &Merchant, order_id: &str) -> Value {
        let body = json!({"prep_time_s": 0});
        let o = self.order_call(order_id, "accept", &m.token, body).await;
        let o = o.expect(200);
        assert_eq!(o["status"], "accepted");
        o
    }

    /// An order taken through payment and the merchant's accept: it is being dispatched.
    pub async fn accepted_order(&self, c: &Customer, m: &Merchant) -> String {
        let id = self.placed_order(c, m).await;
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
        let path = format!(
            "/riders/nearby?lat={}&lon={}&radius_m=50000&limit=100",
            at.0, at.1
        );
        let r = self.get(&path, Some(&self.dispatcher)).await.expect(200);
        r.as_array().unwrap().clone()
    }

    /// The rider's entry in `riders/nearby` (around the shop), if listed.
    pub async fn nearby_rider(&self, rider_id: &str) -> Option<Value> {
        self.nearby(SHOP)
            .await
            .into_iter()
            .find(|r| r["rider_id"] == rider_id)
    }

    /// A new rider: (rider_id, token).
    pub async fn create_rider(&self) -> (String, String) {
        let body = json!({"name": unique("Rider ")});
        let r = self
            .post("/riders", Some(&self.dispatcher), &body)
            .await
            .expect(201);
        (
            r["rider_id"].as_str().unwrap().to_string(),
            r["token"].as_str().unwrap().to_string(),
        )
    }

    /// Escalations, `query` being e.g. `?open=true` or empty.
    pub async fn escalations(&self, query: &str) -> Vec<Value> {
        self.get(&format!("/escalations{query}"), Some(&self.dispatcher))
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .clone()
    }

    /// The open escalation of `kind` about the order, if any.
    pub async fn open_escalation(&self, order_id: &str, kind: &str) -> Option<Value> {
        self.escalations("?open=true")
            .await
            .into_iter()
            .find(|e| e["order_id"] == order_id && e["kind"] == kind)
    }

    /// The escalation `escalation_id` once it is resolved.
    pub async fn resolved_escalation(&self, escalation_id: &Value) -> Option<Value> {
        self.escalations("")
            .await
            .into_iter()
            .find(|e| &e["escalation_id"] == escalation_id && !e["resolved_ms"].is_null())
    }

    // ---- sockets ----

    /// Opens a WebSocket on `path` (e.g. `/ws/rider?token=…`).
    pub async fn ws(&self, path: &str) -> Result<WsClient, u16> {
        WsClient::connect(&format!("{}{path}", self.ws_base)).await
    }

    /// Opens the socket on `path` and reads its first frame of type `first`.
    pub async fn ws_with(&self, path: &str, first: &str) -> (WsClient, Value) {
        let mut ws = self.ws(path).await.unwrap_or_else(|status| {
            panic!("socket {path} refused with {status}");
        });
        let frame = ws.recv_type(first, super::T).await;
        (ws, frame)
    }

    /// The customer's tracking socket for an order (snapshot read and returned).
    pub async fn track(&self, order_id: &str, token: &str) -> (WsClient, Value) {
        let path = format!("/ws/orders/{order_id}/track?token={token}");
        self.ws_with(&path, "snapshot").await
    }

    /// The merchant app's socket (welcome read and returned).
    pub async fn merchant_app(&self, m: &Merchant) -> (WsClient, Value) {
        let path = format!("/ws/merchant?token={}", m.token);
        self.ws_with(&path, "welcome").await
    }

    /// The dispatcher's dashboard socket (snapshot read and returned).
    pub async fn dashboard(&self) -> (WsClient, Value) {
        let path = format!("/ws/dispatch?token={}", self.dispatcher);
        self.ws_with(&path, "snapshot").await
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
