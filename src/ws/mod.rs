//! WebSocket sessions on actix-ws. Each socket runs one task that owns the actix-ws
//! `Session`: it reads client frames, writes what the engine queued in the socket's
//! bounded [`Outbox`], pings every `heartbeat_interval_s` and closes after
//! `client_timeout_s` of silence. A write that cannot complete within `ws_send_timeout_s`
//! (a client that stopped reading) closes the socket instead of buffering.

pub mod dispatch;
pub mod merchant;
pub mod rider;
pub mod track;

use crate::errors::ApiError;
use crate::startup::AppState;
use actix_web::HttpRequest;
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use dispatch_actors::metric_names;
use dispatch_actors::outbox::Outbox;
use std::time::{Duration, Instant};

/// Frames (or reassembled messages) over this close the socket with 1009.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

pub struct PumpOpts {
    pub heartbeat: Duration,
    pub client_timeout: Duration,
    pub send_timeout: Duration,
    pub label: &'static str,
}

impl PumpOpts {
    pub fn from_state(state: &AppState, label: &'static str) -> Self {
        let s = &state.settings.server;
        Self {
            heartbeat: Duration::from_secs_f64(s.heartbeat_interval_s.max(0.01)),
            client_timeout: Duration::from_secs_f64(s.client_timeout_s.max(0.01)),
            send_timeout: Duration::from_secs_f64(s.ws_send_timeout_s.max(0.01)),
            label,
        }
    }
}

/// Refuses browser origins not on the allowlist (empty allowlist: all allowed).
pub fn check_origin(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let allowed = &state.settings.server.allowed_origins;
    if allowed.is_empty() {
        return Ok(());
    }
    match req.headers().get("origin").and_then(|o| o.to_str().ok()) {
        None => Ok(()), // not a browser
        Some(o) if allowed.iter().any(|a| a == o) => Ok(()),
        Some(o) => Err(ApiError::forbidden(format!("origin {o} is not allowed"))),
    }
}

/// Runs a socket until either side ends it. `on_text` handles each client message.
pub async fn pump<T: Send + 'static>(
    mut session: Session,
    stream: actix_ws::MessageStream,
    outbox: Outbox<T>,
    to_text: impl Fn(&T) -> String,
    mut on_text: impl FnMut(&str),
    opts: PumpOpts,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut stream = stream
        .max_frame_size(MAX_MESSAGE_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_MESSAGE_BYTES);
    let mut heartbeat = tokio::time::interval(opts.heartbeat);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();
    let reason: Option<CloseReason> = loop {
        tokio::select! {
            msg = stream.recv() => {
                last_heard = Instant::now();
                match msg {
                    Some(Ok(AggregatedMessage::Text(t))) => on_text(&t),
                    Some(Ok(AggregatedMessage::Binary(b))) => match std::str::from_utf8(&b) {
                        Ok(t) => on_text(t),
                        Err(_) => on_text("\u{0}"),
                    },
                    Some(Ok(AggregatedMessage::Ping(p))) => {
                        if session.pong(&p).await.is_err() { break None; }
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    Some(Ok(AggregatedMessage::Close(_))) | None => break Some(CloseCode::Normal.into()),
                    Some(Err(actix_ws::ProtocolError::Overflow)) => break Some(CloseReason {
                        code: CloseCode::Size,
                        description: Some("message over 64 KiB".into()),
                    }),
                    Some(Err(_)) => break Some(CloseReason {
                        code: CloseCode::Protocol,
                        description: Some("protocol error".into()),
                    }),
                }
            }
            frame = outbox.recv() => match frame {
                Some(f) => {
                    let text = to_text(&f);
                    match tokio::time::timeout(opts.send_timeout, session.text(text)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break None,
                        Err(_) => {
                            metrics::counter!(metric_names::WS_FRAMES_DROPPED_TOTAL, "socket" => opts.label, "why" => "send_timeout").increment(1);
                            break Some(CloseReason { code: CloseCode::Policy, description: Some("client is not reading".into()) });
                        }
                    }
                }
                // Overflowed (client too slow) or replaced by a newer connection.
                None => break Some(CloseReason { code: CloseCode::Policy, description: Some("connection closed by the server".into()) }),
            },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > opts.client_timeout {
                    break Some(CloseReason { code: CloseCode::Normal, description: Some("no sign of life".into()) });
                }
                match tokio::time::timeout(opts.send_timeout, session.ping(b"")).await {
                    Ok(Ok(())) => {}
                    _ => break None,
                }
            }
            _ = shutdown.changed() => break Some(CloseReason { code: CloseCode::Away, description: Some("server shutting down".into()) }),
        }
    };
    outbox.close();
    if let Some(r) = reason {
        let _ = tokio::time::timeout(opts.send_timeout, session.close(Some(r))).await;
    }
}
