//! WebSocket sessions on actix-ws. Each socket runs one task that owns the actix-ws
//! `Session`: it reads client frames, writes what the engine queued in the socket's
//! bounded [`Outbox`], pings every `heartbeat_interval_s` and closes after
//! `client_timeout_s` of silence. A write that cannot complete within `ws_send_timeout_s`
//! (a client that stopped reading) closes the socket instead of buffering.

pub mod dispatch;
pub mod fragments;
pub mod frames;
pub mod merchant;
pub mod rider;
pub mod track;

use crate::errors::ApiError;
use crate::extract::SocketRequest;
use crate::settings::ServerSettings;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use dispatch_actors::metric_names;
use dispatch_actors::outbox::Outbox;
use fragments::{as_text, too_big, Assembled, Fragments};
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
        Self::from_settings(&state.settings.server, label)
    }

    pub fn from_settings(s: &ServerSettings, label: &'static str) -> Self {
        Self {
            heartbeat: Duration::from_secs_f64(s.heartbeat_interval_s.max(0.01)),
            client_timeout: Duration::from_secs_f64(s.client_timeout_s.max(0.01)),
            send_timeout: Duration::from_secs_f64(s.ws_send_timeout_s.max(0.01)),
            label,
        }
    }
}

impl SocketRequest {
    /// Completes the WebSocket handshake (a request that is not one is 400 `invalid_input`)
    /// and gives the socket its bounded queue of `queue_frames`.
    pub fn open<T>(
        self,
        queue_frames: usize,
    ) -> Result<(HttpResponse, Session, MessageStream, Outbox<T>), ApiError> {
        let (response, session, stream) =
            actix_ws::handle(&self.req, self.body).map_err(|e| ApiError::invalid(e.to_string()))?;
        Ok((response, session, stream, Outbox::new(queue_frames)))
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

fn going_away() -> CloseReason {
    CloseReason {
        code: CloseCode::Away,
        description: Some("server shutting down".into()),
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
    let mut stream = stream.max_frame_size(MAX_MESSAGE_BYTES);
    let mut fragments = Fragments::default();
    let mut heartbeat = tokio::time::interval(opts.heartbeat);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();
    let reason: Option<CloseReason> = loop {
        tokio::select! {
            msg = stream.recv() => {
                last_heard = Instant::now();
                match msg {
                    Some(Ok(Message::Text(t))) => on_text(&t),
                    Some(Ok(Message::Binary(b))) => on_text(as_text(&b)),
                    Some(Ok(Message::Continuation(item))) => match fragments.push(item) {
                        Assembled::More => {}
                        Assembled::Whole(whole) => on_text(as_text(&whole)),
                        Assembled::Refused(reason) => break Some(reason),
                    },
                    Some(Ok(Message::Ping(p))) => {
                        if session.pong(&p).await.is_err() { break None; }
                    }
                    Some(Ok(Message::Pong(_) | Message::Nop)) => {}
                    Some(Ok(Message::Close(_))) | None => break Some(CloseCode::Normal.into()),
                    Some(Err(actix_ws::ProtocolError::Overflow)) => break Some(too_big()),
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
                // Shutting down (drain also closes the outboxes), overflowed (client too
                // slow) or replaced by a newer connection.
                None if *shutdown.borrow() => break Some(going_away()),
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
            _ = shutdown.changed() => break Some(going_away()),
        }
    };
    outbox.close();
    if let Some(r) = reason {
        let _ = tokio::time::timeout(opts.send_timeout, session.close(Some(r))).await;
    }
}

/// Serves a socket the server only pushes to (merchant, tracking, dispatcher): whatever the
/// hub queues in `outbox` is written; client messages are read only as signs of life.
/// `on_end` runs once the socket has ended (it takes the outbox off the hub).
pub fn serve_push_only(
    state: &AppState,
    session: Session,
    stream: actix_ws::MessageStream,
    outbox: Outbox<String>,
    label: &'static str,
    on_end: impl FnOnce(&Outbox<String>) + 'static,
) {
    let opts = PumpOpts::from_state(state, label);
    let shutdown = state.shutdown.subscribe();
    actix_web::rt::spawn(async move {
        pump(
            session,
            stream,
            outbox.clone(),
            String::clone,
            |_| {},
            opts,
            shutdown,
        )
        .await;
        on_end(&outbox);
    });
}
