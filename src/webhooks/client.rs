//! One delivery attempt over HTTP(S) (reqwest on rustls): signed, with a timeout, no
//! redirects followed (a redirect could point anywhere, SSRF), and with
//! `webhooks.allow_private` off, names that resolve to non-public addresses refused at
//! connection time (a name checked when subscribed could resolve elsewhere later).

use super::book::Attempt;
use super::model::{is_public, WebhookUrl};
use super::signature;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const EVENT_ID_HEADER: &str = "Dispatch-Event-Id";
pub const EVENT_TYPE_HEADER: &str = "Dispatch-Event-Type";
pub const DELIVERY_ID_HEADER: &str = "Dispatch-Delivery-Id";
pub const ATTEMPT_HEADER: &str = "Dispatch-Delivery-Attempt";

#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Sender, String> {
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dispatchd-webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(2);
        if !allow_private {
            b = b.dns_resolver(Arc::new(PublicOnly));
        }
        let http = b.build().map_err(|e| format!("webhook HTTP client: {e}"))?;
        Ok(Sender {
            http,
            allow_private,
        })
    }

    /// Sends one attempt; Ok on a 2xx answer, else why not (the status, a timeout, a
    /// refused connection).
    pub async fn send(&self, a: &Attempt) -> Result<(), String> {
        // The URL was checked when subscribed; checked again in case `allow_private` was
        // turned off since.
        WebhookUrl::parse(&a.url, self.allow_private)?;
        let unix_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let d = &a.delivery;
        let answer = self
            .http
            .post(&a.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                signature::HEADER,
                signature::header_value(&a.secret, unix_s, d.body.as_bytes()),
            )
            .header(EVENT_ID_HEADER, d.event_id.as_str())
            .header(EVENT_TYPE_HEADER, &d.event_type)
            .header(DELIVERY_ID_HEADER, d.id.as_str())
            .header(ATTEMPT_HEADER, (d.attempts + 1).to_string())
            .body(d.body.clone())
            .send()
            .await
            .map_err(describe)?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", status.as_u16()))
        }
    }
}

/// A short reason for the dead-letter list: the error chain without the URL (which the
/// subscription shows anyway).
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

/// Resolves names as the system does, keeping only public addresses; a name with none
/// left fails to resolve.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<_> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<_> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                let msg =
                    format!("{host} resolves to no public address (webhooks.allow_private is off)");
                return Err(msg.into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused() {
        let name: Name = "localhost".parse().unwrap();
        let err = match PublicOnly.resolve(name).await {
            Ok(_) => panic!("localhost resolved"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("no public address"), "{err}");
    }
}
