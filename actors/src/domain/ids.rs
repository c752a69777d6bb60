//! Identifiers: strings with a type prefix (`o_` order, `r_` rider, …). Parsing checks the
//! prefix and the alphabet, so an id of the wrong kind never reaches the engine.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

macro_rules! id_type {
    ($name:ident, $prefix:literal) => {
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh random id.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, random_suffix()).into())
            }

            /// A stable id derived from `seed` (the same seed gives the same id in every
            /// process and release: FNV-1a, not std's hasher, whose output may change).
            pub fn derived_from(seed: &str) -> Self {
                Self(format!("{}{}", $prefix, stable_hex(seed)).into())
            }

            /// Parses an id of this kind: the prefix, then 1–64 of `[A-Za-z0-9_-]`.
            pub fn parse(s: &str) -> Result<Self, String> {
                let rest = s
                    .strip_prefix($prefix)
                    .ok_or_else(|| format!("{s:?} is not a {} id", stringify!($name)))?;
                if rest.is_empty()
                    || rest.len() > 64
                    || !rest
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return Err(format!("{s:?} is not a valid {} id", stringify!($name)));
                }
                Ok(Self(s.into()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.to_string()
            }
        }

        /// On the wire a plain string; the schema states what [`Self::parse`] accepts.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some(concat!("^", $prefix, "[A-Za-z0-9_-]{1,64}$")))
                    .examples([concat!($prefix, "3k9x0qa1b2c4")])
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }
    };
}

id_type!(OrderId, "o_");
id_type!(RiderId, "r_");
id_type!(MerchantId, "m_");
id_type!(ItemId, "i_");
id_type!(CustomerId, "c_");
id_type!(OfferId, "f_");
id_type!(EscalationId, "e_");
// Webhooks (docs/protocol.md, "Webhooks"): a subscription; one event on its way to one
// subscription; an event as receivers see it (the same id on every delivery and retry).
id_type!(WebhookId, "wh_");
id_type!(DeliveryId, "whd_");
id_type!(WebhookEventId, "evt_");
id_type!(ShareLinkId, "sl_");

/// 128 bits of FNV-1a over `seed` (two passes with different offsets), as hex.
fn stable_hex(seed: &str) -> String {
    let fnv = |offset: u64| {
        seed.bytes().fold(offset, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x6c62_272e_07bb_0142)
    )
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_with_their_prefix() {
        let id = OrderId::generate();
        assert!(id.as_str().starts_with("o_"));
        assert_eq!(OrderId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = OrderId::derived_from("c_1:key-1");
        assert_eq!(a, OrderId::derived_from("c_1:key-1"));
        assert_ne!(a, OrderId::derived_from("c_2:key-1"));
        assert_eq!(OrderId::parse(a.as_str()).unwrap(), a);
        assert_eq!(
            OrderId::derived_from("").as_str(),
            "o_cbf29ce4842223256c62272e07bb0142"
        );
    }

    #[test]
    fn wrong_prefix_or_alphabet_is_refused() {
        assert!(OrderId::parse("r_abc").is_err());
        assert!(OrderId::parse("o_").is_err());
        assert!(OrderId::parse("o_a b").is_err());
        assert!(RiderId::parse("r_ok-1_x").is_ok());
    }
}
