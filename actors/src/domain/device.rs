//! A tracking app's device id (docs/protocol.md, "Tracking apps"). The OsmAnd protocol
//! carries nothing but this id to say who is reporting, so the id is the credential: it is
//! random, long, and kept out of logs and debug output (`Debug` prints no part of it, and
//! there is no `Display`). Only the store and the answer that hands it out read it, through
//! [`DeviceId::expose`].

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// Characters of a generated id: 24 of 36 symbols is about 124 bits.
const GENERATED_LEN: usize = 24;
/// Shorter ids are refused: the protocol asks for at least 20 characters.
pub const MIN_LEN: usize = 20;
pub const MAX_LEN: usize = 128;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DeviceId(Arc<str>);

impl DeviceId {
    /// A fresh random id: lowercase letters and digits, easy to type into a phone app
    /// and safe in an MQTT topic or a URL query.
    pub fn generate() -> Self {
        use rand::Rng;
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut rng = rand::thread_rng();
        let id: String = (0..GENERATED_LEN)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        Self(id.into())
    }

    /// An id as a client sends it: 20–128 of `[A-Za-z0-9_-]` (what this server hands out,
    /// and what fits an MQTT topic level and a query string unescaped).
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (MIN_LEN..=MAX_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.into()))
        } else {
            Err(format!(
                "a device id is {MIN_LEN}-{MAX_LEN} letters, digits, '_' or '-'"
            ))
        }
    }

    /// The secret itself, for the store and for the one answer that hands it out.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceId(…)")
    }
}

/// Lets a map keyed by `DeviceId` be looked up with the `&str` a client sent.
impl Borrow<str> for DeviceId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_long_distinct_and_parse_back() {
        let a = DeviceId::generate();
        let b = DeviceId::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), GENERATED_LEN);
        assert_eq!(DeviceId::parse(a.expose()).unwrap(), a);
    }

    #[test]
    fn short_long_or_odd_ids_are_refused() {
        assert!(DeviceId::parse("48241179").is_err(), "too short");
        assert!(DeviceId::parse(&"a".repeat(MAX_LEN + 1)).is_err());
        assert!(DeviceId::parse("abcdefghij/klmnopqrstuv").is_err());
        assert!(DeviceId::parse("abcdefghij+klmnopqrstuv").is_err());
        assert!(DeviceId::parse("Abcdefghij_klmnop-rstuv").is_ok());
    }

    #[test]
    fn debug_output_shows_no_part_of_the_secret() {
        let id = DeviceId::parse("secretsecretsecretsecret").unwrap();
        assert!(!format!("{id:?}").contains("secret"));
    }
}
