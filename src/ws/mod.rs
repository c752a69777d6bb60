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
pub mod rider_messages;
pub mod share;
pub mod track;

use crate::errors::ApiError;
use crate::extract::SocketRequest;
use crate::settings::ServerSettings;
use crate::sockets::SocketTicket;
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

/// What a socket gets once its handshake completes: the response that upgrades it, the
/// actix-ws session and stream, its bounded queue, and its place in the socket counts.
pub struct Opened<T> {
    pub response: HttpResponse,
    pub session: Session,
    pub stream: MessageStream,
    pub outbox: Outbox<T>,
    pub ticket: SocketTicket,
}

impl SocketRequest {
    /// Takes a place in the socket caps (429 past `server.max_sockets_per_ip` or
    /// `server.max_sockets_per_principal`), completes the WebSocket handshake (a request
    /// that is not one is 400 `invalid_input`) and gives the socket its bounded queue of
    /// `queue_frames`.
    pub fn open<T>(self, queue_frames: usize) -> Result<Opened<T>, ApiError> {
        let ip = self.req.peer_addr().map(|a| a.ip());
        let ticket = self.state.sockets.admit(ip, &self.who, self.expires_ms)?;
        // Revocation forgets the tokens, then ends the sockets counted: a socket counted
        // after that end finds its token gone here.
        if self.state.auth.lookup_grant(&self.token).is_none() {
            return Err(ApiError::Unauthorized("invalid token".into()));
        }
        let (response, session, stream) =
            actix_ws::handle(&self.req, self.body).map_err(|e| ApiError::invalid(e.to_string()))?;
        Ok(Opened {
            response,
            session,
            stream,
            outbox: Outbox::new(queue_frames),
            ticket,
        })
    }
}

/// Refuses (403) a browser origin that is not allowed: see [`origin_allowed`].
pub fn check_origin(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let origin = req
        .headers()
        .get("origin")
        .map(|o| o.to_str().unwrap_or("?"));
    let host = req.headers().get("host").and_then(|h| h.to_str().ok());
    if origin_allowed(&state.settings.server.allowed_origins, origin, host) {
        return Ok(());
    }
    metrics::counter!(metric_names::WS_REFUSED_TOTAL, "why" => "origin").increment(1);
    Err(ApiError::forbidden(format!(
        "origin {} is not allowed",
        origin.unwrap_or_default()
    )))
}

/// No `Origin` (a native app, not a browser): allowed. Otherwise the origin must be on
/// `allowed` (`"*"` allows any), or, when `allowed` is empty, name the host the request
/// was sent to (a page this server served).
pub fn origin_allowed(allowed: &[String], origin: Option<&str>, host: Option<&str>) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    if !allowed.is_empty() {
        return false;
    }
    let origin_host = match origin.split_once("://") {
        Some(("http" | "https", h)) => h.trim_end_matches('/'),
        _ => return false, // "null" (a file or sandboxed page), or not a web origin
    };
    host.is_some_and(|h| !h.is_empty() && h.eq_ignore_ascii_case(origin_host))
}

fn going_away() -> CloseReason {
    CloseReason {
        code: CloseCode::Away,
        description: Some("server shutting down".into()),
    }
}

/// Runs a socket until either side ends it, or its ticket does (token revoked or
/// expired). `on_text` handles each client message.
#[allow(clippy::too_many_arguments)]
pub async fn pump<T: Send + 'static>(
    mut session: Session,
    stream: actix_ws::MessageStream,
    outbox: Outbox<T>,
    to_text: impl Fn(&T) -> String,
    mut on_text: impl FnMut(&str),
    opts: PumpOpts,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    mut ticket: SocketTicket,
) {
    // Armed once: one timer per socket, not one per message.
    let ended = ticket.ended();
    tokio::pin!(ended);
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
            why = &mut ended => break Some(why),
        }
    };
    outbox.close();
    if let Some(r) = reason {
        let _ = tokio::time::timeout(opts.send_timeout, session.close(Some(r))).await;
    }
}

/// Serves a socket the server only pushes to (merchant, tracking, dispatcher): whatever the
/// hub queues in `outbox` is written; client messages are read only as signs of life.
/// `on_end` runs once the socket has ended (it takes the outbox off the hub). Returns the
/// response that completes the handshake.
pub fn serve_push_only(
    state: &AppState,
    socket: Opened<String>,
    label: &'static str,
    on_end: impl FnOnce(&Outbox<String>) + 'static,
) -> HttpResponse {
    let opts = PumpOpts::from_state(state, label);
    let shutdown = state.shutdown.subscribe();
    let Opened {
        response,
        session,
        stream,
        outbox,
        ticket,
    } = socket;
    actix_web::rt::spawn(async move {
        pump(
            session,
            stream,
            outbox.clone(),
            String::clone,
            |_| {},
            opts,
            shutdown,
            ticket,
        )
        .await;
        on_end(&outbox);
    });
    response
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn origins_same_host_by_default_the_list_when_given() {
        let none: Vec<String> = Vec::new();
        let host = Some("127.0.0.1:8080");
        // A native app sends no Origin.
        assert!(origin_allowed(&none, None, host));
        assert!(origin_allowed(&none, Some("http://127.0.0.1:8080"), host));
        assert!(origin_allowed(&none, Some("https://127.0.0.1:8080/"), host));
        assert!(!origin_allowed(&none, Some("http://evil.example"), host));
        assert!(!origin_allowed(&none, Some("http://127.0.0.1:9999"), host));
        assert!(!origin_allowed(&none, Some("null"), host));
        assert!(!origin_allowed(&none, Some("http://127.0.0.1:8080"), None));
        let list = vec!["https://dispatch.example.com".to_string()];
        assert!(origin_allowed(
            &list,
            Some("https://dispatch.example.com"),
            host
        ));
        assert!(!origin_allowed(&list, Some("http://127.0.0.1:8080"), host));
        let any = vec!["*".to_string()];
        assert!(origin_allowed(&any, Some("http://evil.example"), host));
    }
}
