//! The socket side: a WebSocket client that keeps every frame it read, for assertion
//! messages and "never" checks.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

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

    /// Sends one text message split into `parts`, one frame each (a fragmented message).
    pub async fn send_fragmented(&mut self, parts: &[&[u8]]) {
        for (i, part) in parts.iter().enumerate() {
            let kind = if i == 0 { Data::Text } else { Data::Continue };
            let fin = i + 1 == parts.len();
            self.send_frame(Frame::message(part.to_vec(), OpCode::Data(kind), fin))
                .await;
        }
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

    /// Asserts that no frame of type `ty` arrives during `during`; returns what came.
    pub async fn expect_no_type(&mut self, ty: &str, during: Duration) -> Vec<Value> {
        self.expect_none(ty, during, |v| v["type"] == ty).await
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
