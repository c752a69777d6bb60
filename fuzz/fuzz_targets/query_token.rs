//! Who is calling, and the query strings: an `Authorization` header, an
//! `Idempotency-Key` header and a query string (three lines of the input; the first byte
//! says whether the route also reads `?token=`, as WebSocket upgrades do).
//!
//! Checked: a caller is let in only as the principal a presented token was issued to (the
//! tokens a header or the query string held, found here without the server's code); a
//! stored token owner that decodes encodes back to itself; the riders/nearby and
//! escalations queries refuse with 400 and accept only values in their ranges; an
//! accepted idempotency key is 1–128 printable bytes.

#![no_main]

use actix_web::http::header::HeaderValue;
use actix_web::http::Uri;
use actix_web::test::TestRequest;
use actix_web::{web, ResponseError};
use dispatchd::auth::{request_token, AuthRegistry, Principal};
use dispatchd::idempotency::header_key;
use dispatchd::password::{PasswordPool, PoolConfig};
use dispatchd::routes::escalations::open_only;
use dispatchd::routes::riders::parse_nearby;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

const DISPATCHER: &str = "dispatcher-secret-token";

/// Tokens as a restart restores them from the store, including owners that must not
/// decode (a kind that does not exist, an id of the wrong shape).
fn issued() -> &'static [(&'static str, &'static str)] {
    &[
        ("rider-token-1", "rider:r_1"),
        ("merchant-token-1", "merchant:m_1"),
        ("customer-token-1", "customer:c_1"),
        ("junk-token-1", "dispatcher:x"),
        ("junk-token-2", "rider:o_1"),
        ("junk-token-3", "rider"),
    ]
}

fn registry() -> &'static AuthRegistry {
    static REG: OnceLock<AuthRegistry> = OnceLock::new();
    REG.get_or_init(|| {
        let hasher = PasswordPool::new(PoolConfig {
            threads: 1,
            ..PoolConfig::default()
        });
        let reg = AuthRegistry::new(DISPATCHER.into(), Duration::from_secs(3600), hasher);
        let tokens = issued()
            .iter()
            .map(|(t, w)| (t.to_string(), w.to_string()))
            .collect();
        assert_eq!(reg.restore(tokens, Vec::new()), (3, 0));
        reg
    })
}

/// Who a token was issued to, from the table above.
fn owner(token: &str) -> Option<Principal> {
    if token == DISPATCHER {
        return Some(Principal::Dispatcher);
    }
    issued()
        .iter()
        .find(|(t, _)| *t == token)
        .and_then(|(_, w)| Principal::decode(w))
}

fn unhex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `application/x-www-form-urlencoded` decoding of one key or value.
fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (unhex(b[i + 1]), unhex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every token a request presents: the bearer header's, and (when read) each `token`
/// value of the query string.
fn presented(header: Option<&str>, query: &str, allow_query: bool) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(h) = header {
        if let Some(t) = h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
        {
            out.push(t.trim().to_string());
        }
    }
    if allow_query {
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if form_decode(k) == "token" {
                out.push(form_decode(v));
            }
        }
    }
    out
}

fn client_error(e: &dispatchd::errors::ApiError) {
    assert_eq!(e.status_code().as_u16(), 400, "{e:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let allow_query = flags & 1 == 1;
    let mut parts = rest.splitn(3, |b| *b == b'\n');
    let auth = parts.next().unwrap_or_default();
    let idem = parts.next().unwrap_or_default();
    let query = parts.next().unwrap_or_default();

    // A stored owner string (Redis `tokens` hash values) decodes only to what encodes back.
    if let Ok(s) = std::str::from_utf8(rest) {
        if let Some(p) = Principal::decode(s) {
            assert_eq!(p.encode(), s);
        }
    }

    // Only what an HTTP parser lets through reaches the server: a valid URI and header values.
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let uri = format!("/ws/rider?{query}");
    if Uri::try_from(uri.as_str()).is_err() {
        return;
    }
    let mut req = TestRequest::default().uri(&uri);
    let auth_value = HeaderValue::from_bytes(auth).ok();
    if let Some(v) = &auth_value {
        req = req.insert_header(("authorization", v.clone()));
    }
    if let Ok(v) = HeaderValue::from_bytes(idem) {
        req = req.insert_header(("idempotency-key", v));
    }
    let req = req.to_http_request();

    // The server's extractors let a caller in as exactly this: the request's token, looked
    // up among the tokens this node holds.
    let who = request_token(&req, allow_query).and_then(|t| registry().lookup(&t));
    let header = auth_value.as_ref().and_then(|v| v.to_str().ok());
    let tokens = presented(header, req.query_string(), allow_query);
    if let Some(p) = who {
        assert!(
            tokens.iter().any(|t| owner(t).as_ref() == Some(&p)),
            "let in as {p:?} with {tokens:?}"
        );
    }

    match header_key(&req) {
        Ok(Some(k)) => {
            assert!((1..=128).contains(&k.len()));
            assert!(k.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)));
        }
        Ok(None) => {}
        Err(e) => client_error(&e),
    }

    if let Ok(q) = web::Query::<HashMap<String, String>>::from_query(req.query_string()) {
        match parse_nearby(&q) {
            Ok(n) => {
                assert!((1.0..=50_000.0).contains(&n.radius_m));
                assert!((1..=100).contains(&n.limit));
                assert!((-90.0..=90.0).contains(&n.at.lat()));
                assert!((-180.0..=180.0).contains(&n.at.lon()));
            }
            Err(e) => client_error(&e),
        }
        match open_only(&q) {
            Ok(open) => assert_eq!(open, q.get("open").map(String::as_str) == Some("true")),
            Err(e) => client_error(&e),
        }
    }
});
