//! Share links (docs/protocol.md, "Share links"): a customer lets someone without an
//! account follow an order. The token in the link is the only credential, so it is random
//! (128 bits), and kept out of logs and debug output like a device id. A link is dead once
//! it expires, once it is revoked, or `after_final` after the order became final; which of
//! these comes first is decided here, by plain arithmetic the tests can pin down.

use super::{CustomerId, OrderId, ShareLinkId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Hex characters of a token: 32 of 16 symbols is 128 bits.
pub const TOKEN_LEN: usize = 32;

/// What the person holding the link sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SharePrivacy {
    /// The order's status and timeline; never where the rider is.
    Status,
    /// The status, and the rider's position and ETA while the rider carries the order.
    StatusAndPosition,
}

impl SharePrivacy {
    pub fn shows_position(self) -> bool {
        self == SharePrivacy::StatusAndPosition
    }
}

/// The secret in a share link: 32 lowercase hex characters, safe in a URL path.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ShareToken(Arc<str>);

impl ShareToken {
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; TOKEN_LEN / 2];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(
            bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into(),
        )
    }

    /// A token as a client sends it; anything else names no link.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = s.len() == TOKEN_LEN
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Self(s.into()))
        } else {
            Err("not a share token".into())
        }
    }

    /// The secret itself, for the store and the answers that hand it to its customer.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ShareToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShareToken(…)")
    }
}

impl TryFrom<String> for ShareToken {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<ShareToken> for String {
    fn from(t: ShareToken) -> String {
        t.0.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareLink {
    pub link_id: ShareLinkId,
    pub token: ShareToken,
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub privacy: SharePrivacy,
    pub created_ms: u64,
    pub expires_ms: u64,
    #[serde(default)]
    pub revoked_ms: Option<u64>,
}

/// Why a link no longer opens anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dead {
    Expired,
    Revoked,
    /// The order became final more than `after_final` ago.
    OrderFinished,
}

impl Dead {
    pub fn message(self) -> &'static str {
        match self {
            Dead::Expired => "this share link has expired",
            Dead::Revoked => "this share link was revoked",
            Dead::OrderFinished => "the order is finished; this share link no longer works",
        }
    }
}

impl ShareLink {
    pub fn new(
        order_id: OrderId,
        customer_id: CustomerId,
        privacy: SharePrivacy,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Self {
        Self {
            link_id: ShareLinkId::generate(),
            token: ShareToken::generate(),
            order_id,
            customer_id,
            privacy,
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(ttl_ms),
            revoked_ms: None,
        }
    }

    /// When the link stops working if nothing else happens: its expiry, or `after_final_ms`
    /// after the order's final state (`final_ms`), whichever is first.
    pub fn closes_at_ms(&self, final_ms: Option<u64>, after_final_ms: u64) -> u64 {
        match final_ms {
            Some(f) => self.expires_ms.min(f.saturating_add(after_final_ms)),
            None => self.expires_ms,
        }
    }

    /// Live until [`ShareLink::closes_at_ms`], or why not. Revocation is checked first: a
    /// revoked link says so even after it would have expired.
    pub fn check(
        &self,
        now_ms: u64,
        final_ms: Option<u64>,
        after_final_ms: u64,
    ) -> Result<u64, Dead> {
        if self.revoked_ms.is_some() {
            return Err(Dead::Revoked);
        }
        if now_ms >= self.expires_ms {
            return Err(Dead::Expired);
        }
        let closes = self.closes_at_ms(final_ms, after_final_ms);
        if now_ms >= closes {
            return Err(Dead::OrderFinished);
        }
        Ok(closes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(privacy: SharePrivacy) -> ShareLink {
        ShareLink::new(
            OrderId::generate(),
            CustomerId::generate(),
            privacy,
            1_000,
            60_000,
        )
    }

    #[test]
    fn tokens_are_long_distinct_hex_and_hidden_from_debug() {
        let a = ShareToken::generate();
        let b = ShareToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), TOKEN_LEN);
        assert_eq!(ShareToken::parse(a.expose()).unwrap(), a);
        assert!(!format!("{a:?}").contains(a.expose()));
        for bad in ["", "abc", &"g".repeat(32), &"A".repeat(32), &"a".repeat(33)] {
            assert!(ShareToken::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_link_lives_until_expiry_revocation_or_after_final_whichever_first() {
        let l = link(SharePrivacy::Status);
        assert_eq!(l.check(1_000, None, 5_000), Ok(61_000));
        assert_eq!(l.check(60_999, None, 5_000), Ok(61_000));
        assert_eq!(l.check(61_000, None, 5_000), Err(Dead::Expired));
        // Final at 10 s: closes 5 s later, long before its expiry.
        assert_eq!(l.check(14_999, Some(10_000), 5_000), Ok(15_000));
        assert_eq!(
            l.check(15_000, Some(10_000), 5_000),
            Err(Dead::OrderFinished)
        );
        // Final just before expiry: the expiry still wins.
        assert_eq!(l.check(60_000, Some(59_000), 5_000), Ok(61_000));
        assert_eq!(l.check(61_000, Some(59_000), 5_000), Err(Dead::Expired));
        let mut r = l.clone();
        r.revoked_ms = Some(2_000);
        assert_eq!(r.check(2_000, None, 5_000), Err(Dead::Revoked));
        assert_eq!(r.check(99_000, None, 5_000), Err(Dead::Revoked));
    }

    #[test]
    fn privacy_reads_and_writes_as_the_protocol_names_it() {
        let v = serde_json::to_string(&SharePrivacy::StatusAndPosition).unwrap();
        assert_eq!(v, "\"status_and_position\"");
        let p: SharePrivacy = serde_json::from_str("\"status\"").unwrap();
        assert!(!p.shows_position());
        assert!(serde_json::from_str::<SharePrivacy>("\"everything\"").is_err());
        let l = link(SharePrivacy::StatusAndPosition);
        let back: ShareLink = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back, l);
    }
}
