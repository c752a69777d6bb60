//! What an inbox entry holds: a call, its answer, a refusal (the callee was full), or a
//! note (one way, no answer), as stream fields readable with `redis-cli XRANGE`.

use redis::Value;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Call {
        from: String,
        corr: u64,
        body: String,
    },
    Answer {
        corr: u64,
        body: String,
    },
    Refused {
        corr: u64,
    },
    Note {
        from: String,
        body: String,
    },
}

impl Entry {
    /// The entry's fields, in order.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        match self {
            Entry::Call { from, corr, body } => vec![
                ("kind", "call".into()),
                ("from", from.clone()),
                ("corr", corr.to_string()),
                ("body", body.clone()),
            ],
            Entry::Answer { corr, body } => vec![
                ("kind", "answer".into()),
                ("corr", corr.to_string()),
                ("body", body.clone()),
            ],
            Entry::Refused { corr } => vec![("kind", "refused".into()), ("corr", corr.to_string())],
            Entry::Note { from, body } => vec![
                ("kind", "note".into()),
                ("from", from.clone()),
                ("body", body.clone()),
            ],
        }
    }

    /// Reads an entry back; None for anything malformed (logged and acknowledged by the
    /// reader, never retried forever).
    pub fn parse(map: &HashMap<String, Value>) -> Option<Entry> {
        let field = |k: &str| -> Option<String> {
            match map.get(k)? {
                Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
                Value::SimpleString(s) => Some(s.clone()),
                _ => None,
            }
        };
        let kind = field("kind")?;
        if kind == "note" {
            return Some(Entry::Note {
                from: field("from")?,
                body: field("body")?,
            });
        }
        let corr = field("corr")?.parse().ok()?;
        match kind.as_str() {
            "call" => Some(Entry::Call {
                from: field("from")?,
                corr,
                body: field("body")?,
            }),
            "answer" => Some(Entry::Answer {
                corr,
                body: field("body")?,
            }),
            "refused" => Some(Entry::Refused { corr }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_map(e: &Entry) -> HashMap<String, Value> {
        e.fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::BulkString(v.into_bytes())))
            .collect()
    }

    #[test]
    fn entries_round_trip() {
        for e in [
            Entry::Call {
                from: "n1".into(),
                corr: 7,
                body: "{\"x\":1}".into(),
            },
            Entry::Answer {
                corr: 8,
                body: String::new(),
            },
            Entry::Refused { corr: 9 },
            Entry::Note {
                from: "n2".into(),
                body: "x".into(),
            },
        ] {
            assert_eq!(Entry::parse(&as_map(&e)), Some(e));
        }
    }

    #[test]
    fn malformed_entries_are_refused() {
        let mut m = as_map(&Entry::Refused { corr: 1 });
        m.insert("kind".into(), Value::BulkString(b"shout".to_vec()));
        assert_eq!(Entry::parse(&m), None);
        m.insert("kind".into(), Value::BulkString(b"refused".to_vec()));
        m.insert("corr".into(), Value::BulkString(b"-1".to_vec()));
        assert_eq!(Entry::parse(&m), None);
        assert_eq!(Entry::parse(&HashMap::new()), None);
    }
}
