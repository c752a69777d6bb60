//! A fragmented client message put back together, with the 64 KiB cap applied while it
//! grows. A plain type (the socket task feeds it what actix-ws reads) so the rules are
//! tested, and fuzzed (fuzz/fuzz_targets/socket_stream.rs), without a socket.

use super::MAX_MESSAGE_BYTES;
use actix_ws::{CloseCode, CloseReason, Item};

/// What one continuation frame leaves the message at.
#[derive(Debug, PartialEq)]
pub enum Assembled {
    /// More fragments to come.
    More,
    /// The last fragment came: the whole message.
    Whole(Vec<u8>),
    /// The socket must close with this reason (a fragment without a first, or over 64 KiB).
    Refused(CloseReason),
}

/// Fragments of the message being received. Reassembled here rather than by actix-ws's
/// aggregator, which reports an oversized message as a generic I/O error (that would close
/// with 1002, not 1009).
#[derive(Debug, Default)]
pub struct Fragments {
    partial: Option<Vec<u8>>,
}

impl Fragments {
    pub fn push(&mut self, item: Item) -> Assembled {
        let (bytes, last) = match item {
            Item::FirstText(b) | Item::FirstBinary(b) => {
                self.partial = Some(Vec::new());
                (b, false)
            }
            Item::Continue(b) => (b, false),
            Item::Last(b) => (b, true),
        };
        let Some(buf) = self.partial.as_mut() else {
            return Assembled::Refused(CloseReason {
                code: CloseCode::Protocol,
                description: Some("continuation without a first fragment".into()),
            });
        };
        if buf.len() + bytes.len() > MAX_MESSAGE_BYTES {
            return Assembled::Refused(too_big());
        }
        buf.extend_from_slice(&bytes);
        if last {
            return Assembled::Whole(self.partial.take().unwrap_or_default());
        }
        Assembled::More
    }
}

pub fn too_big() -> CloseReason {
    CloseReason {
        code: CloseCode::Size,
        description: Some("message over 64 KiB".into()),
    }
}

/// A message as the text handlers read: a binary message is read as text when it is UTF-8,
/// else as a string no handler accepts (so it is refused as an invalid message).
pub fn as_text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("\u{0}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::web::Bytes;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn fragments_come_back_whole() {
        let mut f = Fragments::default();
        assert_eq!(f.push(Item::FirstText(b("{\"type\":"))), Assembled::More);
        assert_eq!(f.push(Item::Continue(b("\"status\","))), Assembled::More);
        assert_eq!(
            f.push(Item::Last(b("\"status\":\"online\"}"))),
            Assembled::Whole(b"{\"type\":\"status\",\"status\":\"online\"}".to_vec())
        );
        // The next message starts afresh; a fragment with no first is refused.
        assert!(matches!(
            f.push(Item::Last(b("x"))),
            Assembled::Refused(CloseReason {
                code: CloseCode::Protocol,
                ..
            })
        ));
    }

    #[test]
    fn a_message_over_64_kib_is_refused_as_it_grows() {
        let mut f = Fragments::default();
        let half = Bytes::from(vec![b'a'; MAX_MESSAGE_BYTES / 2]);
        assert_eq!(f.push(Item::FirstBinary(half.clone())), Assembled::More);
        assert_eq!(f.push(Item::Continue(half)), Assembled::More);
        assert_eq!(f.push(Item::Last(b("a"))), Assembled::Refused(too_big()));
    }

    #[test]
    fn binary_that_is_not_utf8_reads_as_nothing_a_handler_accepts() {
        assert_eq!(as_text(b"{\"a\":1}"), "{\"a\":1}");
        assert_eq!(as_text(&[0xff, 0xfe]), "\u{0}");
    }
}
