//! What a subscription is made of, parsed at the edge: the events one can subscribe to,
//! the URL (http or https, and by default only public addresses: SSRF), the secret.

use rand::RngCore;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// The events a subscription may ask for (docs/protocol.md, "Webhooks").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An order entered a status (also its creation, `previous_status` null).
    OrderStatusChanged,
    EscalationOpened,
    /// An open escalation's level went up.
    EscalationRaised,
    EscalationResolved,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::OrderStatusChanged,
        EventKind::EscalationOpened,
        EventKind::EscalationRaised,
        EventKind::EscalationResolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::OrderStatusChanged => "order.status_changed",
            EventKind::EscalationOpened => "escalation.opened",
            EventKind::EscalationRaised => "escalation.raised",
            EventKind::EscalationResolved => "escalation.resolved",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

pub const MAX_URL_LEN: usize = 2048;
pub const SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=256;

/// A URL the server may call: absolute http(s), a host, no credentials or fragment, and
/// (unless `allow_private`) not a loopback, private or otherwise non-public address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

impl WebhookUrl {
    pub fn parse(raw: &str, allow_private: bool) -> Result<WebhookUrl, String> {
        if raw.len() > MAX_URL_LEN {
            return Err(format!("url is longer than {MAX_URL_LEN} bytes"));
        }
        let url = Url::parse(raw).map_err(|e| format!("url {raw:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("url must be http or https, not {}", url.scheme()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("url must not carry credentials; receivers check the signature".into());
        }
        if url.fragment().is_some() {
            return Err("url must not have a #fragment".into());
        }
        let Some(host) = url.host() else {
            return Err("url has no host".into());
        };
        if !allow_private {
            refuse_private_host(&host)?;
        }
        Ok(WebhookUrl(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// The checks a host name or literal address gets when private addresses are not allowed.
/// Names that resolve to private addresses are refused at delivery (`client.rs`).
fn refuse_private_host(host: &Host<&str>) -> Result<(), String> {
    let private = match host {
        Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Host::Ipv4(ip) => !is_public(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => !is_public(IpAddr::V6(*ip)),
    };
    if private {
        Err(format!(
            "url host {host} is not a public address (webhooks.allow_private is off)"
        ))
    } else {
        Ok(())
    }
}

/// Is `ip` an address on the public internet? (std's `is_global` is not stable yet; the
/// ranges are IANA's special-purpose registries.) Loopback, private (RFC 1918, unique local),
/// link-local (cloud metadata lives there), shared (CGNAT), documentation, benchmarking,
/// multicast, broadcast, reserved and unspecified addresses are not.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

/// The secret that signs a subscription's calls: given (16–256 printable characters) or
/// generated (`whsec_` and 32 random bytes in hex).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn parse(raw: &str) -> Result<Secret, String> {
        let n = raw.chars().count();
        if !SECRET_LEN.contains(&n) {
            return Err(format!(
                "secret must be {}–{} characters, got {n}",
                SECRET_LEN.start(),
                SECRET_LEN.end()
            ));
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("secret must not contain spaces or control characters".into());
        }
        Ok(Secret(raw.to_string()))
    }

    pub fn generate() -> Secret {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Secret(format!("whsec_{}", hex::encode(bytes)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The events of a subscription: at least one, each known, duplicates dropped.
pub fn parse_events(raw: &[String]) -> Result<Vec<EventKind>, String> {
    if raw.is_empty() {
        return Err("events must name at least one event".into());
    }
    let mut kinds = Vec::new();
    for name in raw {
        let k = EventKind::parse(name).ok_or_else(|| {
            let known: Vec<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown event {name:?}; known events: {}", known.join(", "))
        })?;
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_http_with_a_host_and_nothing_hidden() {
        assert!(WebhookUrl::parse("https://hooks.example.com/dispatch?x=1", false).is_ok());
        assert!(WebhookUrl::parse("http://hooks.example.com:8080/", false).is_ok());
        for bad in [
            "ftp://example.com/",
            "/relative",
            "not a url",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "file:///etc/passwd",
            "",
        ] {
            assert!(WebhookUrl::parse(bad, true).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(WebhookUrl::parse(&long, true)
            .unwrap_err()
            .contains("longer"));
    }

    #[test]
    fn private_addresses_only_when_allowed() {
        for private in [
            "http://127.0.0.1:9000/",
            "http://localhost/",
            "http://api.localhost/",
            "http://10.1.2.3/",
            "http://192.168.0.10/",
            "http://172.16.5.5/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            let err = WebhookUrl::parse(private, false).unwrap_err();
            assert!(err.contains("allow_private"), "{private}: {err}");
            assert!(WebhookUrl::parse(private, true).is_ok(), "{private}");
        }
        for public in ["http://8.8.8.8/", "http://[2606:4700::1111]/"] {
            assert!(WebhookUrl::parse(public, false).is_ok(), "{public}");
        }
    }

    #[test]
    fn secrets_have_bounds_and_generated_ones_are_fresh() {
        assert!(Secret::parse("0123456789abcdef").is_ok());
        assert!(Secret::parse("short").is_err());
        assert!(Secret::parse(&"x".repeat(257)).is_err());
        assert!(Secret::parse("has a space in it ok").is_err());
        let (a, b) = (Secret::generate(), Secret::generate());
        assert_ne!(a, b);
        assert!(a.expose().starts_with("whsec_") && a.expose().len() == 6 + 64);
        assert_eq!(format!("{a:?}"), "Secret(…)", "never logged");
    }

    #[test]
    fn events_are_known_names_without_repeats() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_events(&names(&["escalation.opened", "escalation.opened"])).unwrap(),
            vec![EventKind::EscalationOpened]
        );
        assert!(parse_events(&[]).is_err());
        let err = parse_events(&names(&["order.created"])).unwrap_err();
        assert!(err.contains("order.created") && err.contains("order.status_changed"));
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
    }
}
