//! The per-request span of tracing-actix-web, with secrets taken out: a WebSocket may
//! carry its token in the query (`?token=…`, browsers cannot set headers there), and the
//! request line would otherwise put it in every log line written inside the request.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use std::borrow::Cow;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

/// Query parameters whose values never reach a log.
const SECRET_PARAMS: &[&str] = &["token", "access_token", "password"];

/// Paths whose last segment is a secret (a share link's token).
const SECRET_PATHS: &[&str] = &["/s/"];

/// `path?query` with the values of secret parameters, and the secret segment of a share
/// link's path, replaced by `[redacted]`.
pub fn redact(path_and_query: &str) -> Cow<'_, str> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let secret_path = SECRET_PATHS.iter().find(|p| path.starts_with(**p));
    let query = query.map(redact_query);
    let query_changed = matches!(query, Some(Cow::Owned(_)));
    if secret_path.is_none() && !query_changed {
        return Cow::Borrowed(path_and_query);
    }
    let path = match secret_path {
        Some(prefix) => Cow::Owned(format!("{prefix}[redacted]")),
        None => Cow::Borrowed(path),
    };
    Cow::Owned(match query {
        Some(q) => format!("{path}?{q}"),
        None => path.into_owned(),
    })
}

/// A query string with the values of secret parameters replaced by `[redacted]`.
fn redact_query(query: &str) -> Cow<'_, str> {
    let secret = |pair: &str| {
        let name = pair.split_once('=').map_or(pair, |(k, _)| k);
        SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(name))
    };
    if !query.split('&').any(secret) {
        return Cow::Borrowed(query);
    }
    let parts: Vec<Cow<str>> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if secret(pair) => Cow::Owned(format!("{k}=[redacted]")),
            _ => Cow::Borrowed(pair),
        })
        .collect();
    Cow::Owned(parts.join("&"))
}

/// tracing-actix-web's root span with the target redacted (and no other field that could
/// hold a secret: no headers).
pub struct RedactedSpans;

impl RootSpanBuilder for RedactedSpans {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let target = request.uri().path_and_query().map_or("", |p| p.as_str());
        let route = request.match_pattern().unwrap_or_else(|| "default".into());
        let request_id = request.extensions().get::<RequestId>().copied();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %redact(target),
            http.client_ip = %request.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default(),
            http.status_code = tracing::field::Empty,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = %request_id.map(|r| r.to_string()).unwrap_or_default(),
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[test]
    fn secret_query_values_are_redacted_and_the_rest_kept() {
        assert_eq!(redact("/ws/rider"), "/ws/rider");
        assert_eq!(
            redact("/api/v1/riders/nearby?lat=1&lon=2"),
            "/api/v1/riders/nearby?lat=1&lon=2"
        );
        assert_eq!(
            redact("/ws/rider?token=abc123"),
            "/ws/rider?token=[redacted]"
        );
        assert_eq!(
            redact("/ws/orders/o_1/track?x=1&TOKEN=abc&y=2&password=p"),
            "/ws/orders/o_1/track?x=1&TOKEN=[redacted]&y=2&password=[redacted]"
        );
        assert_eq!(redact("/x?token"), "/x?token");
        assert_eq!(
            redact("/s/0123456789abcdef0123456789abcdef"),
            "/s/[redacted]"
        );
        assert_eq!(
            redact("/s/0123456789abcdef?token=abc&x=1"),
            "/s/[redacted]?token=[redacted]&x=1"
        );
        assert_eq!(redact("/static/app.css"), "/static/app.css");
        assert!(!redact("/x?tokenx=1&token=s3cr3t").contains("s3cr3t"));
    }

    /// What a subscriber writes, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_request_span_in_the_log_holds_no_token() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::NEW)
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let req = actix_web::test::TestRequest::get()
                .uri("/ws/rider?token=0123456789abcdef")
                .to_srv_request();
            let span = RedactedSpans::on_request_start(&req);
            span.in_scope(|| tracing::warn!("inside the request"));
        });
        let log = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("inside the request"), "{log}");
        assert!(log.contains("token=[redacted]"), "{log}");
        assert!(!log.contains("0123456789abcdef"), "{log}");
    }
}
