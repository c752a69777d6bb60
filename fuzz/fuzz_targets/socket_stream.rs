//! The bytes a client sends on a WebSocket after the handshake: the server-side frame
//! decoder (actix-http's codec, 64 KiB frames, as actix-ws runs it), then the socket
//! task's reassembly of fragments (`ws::fragments`), then the socket's own handling: a
//! rider socket parses each message, a merchant (tracking, dashboard) socket only takes
//! it as a sign of life. The first byte picks the socket.
//!
//! Checked: a whole message is exactly the concatenation of its fragments and never over
//! 64 KiB; a refused continuation is one with no first fragment or one that would grow the
//! message past 64 KiB.

#![no_main]

use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame, Item};
use bytes::BytesMut;
use dispatchd::ws::fragments::{as_text, Assembled, Fragments};
use dispatchd::ws::rider::parse;
use dispatchd::ws::MAX_MESSAGE_BYTES;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let rider = which & 1 == 0;
    let handle = |text: &str| {
        if rider {
            let _ = parse(text);
        }
    };
    let mut codec = Codec::new().max_size(MAX_MESSAGE_BYTES);
    let mut buf = BytesMut::from(bytes);
    let mut fragments = Fragments::default();
    // What the message in progress must come to, kept independently of `Fragments`.
    let mut expected: Option<Vec<u8>> = None;
    loop {
        let frame = match codec.decode(&mut buf) {
            Ok(Some(f)) => f,
            // Waiting for more bytes, or a protocol error: the socket closes.
            Ok(None) | Err(_) => return,
        };
        match frame {
            Frame::Text(b) => match std::str::from_utf8(&b) {
                Ok(t) => handle(t),
                Err(_) => return,
            },
            Frame::Binary(b) => handle(as_text(&b)),
            Frame::Continuation(item) => {
                let (chunk, first, last) = match &item {
                    Item::FirstText(b) | Item::FirstBinary(b) => (b.clone(), true, false),
                    Item::Continue(b) => (b.clone(), false, false),
                    Item::Last(b) => (b.clone(), false, true),
                };
                if first {
                    expected = Some(Vec::new());
                }
                let had_first = expected.is_some();
                let grown = expected.as_ref().map_or(0, Vec::len) + chunk.len();
                match fragments.push(item) {
                    Assembled::More => {
                        assert!(had_first && !last && grown <= MAX_MESSAGE_BYTES);
                        expected.as_mut().unwrap().extend_from_slice(&chunk);
                    }
                    Assembled::Whole(whole) => {
                        assert!(had_first && last && grown <= MAX_MESSAGE_BYTES);
                        let mut want = expected.take().unwrap();
                        want.extend_from_slice(&chunk);
                        assert_eq!(whole, want);
                        assert!(whole.len() <= MAX_MESSAGE_BYTES);
                        handle(as_text(&whole));
                    }
                    Assembled::Refused(_) => {
                        assert!(!had_first || grown > MAX_MESSAGE_BYTES);
                        return;
                    }
                }
            }
            Frame::Ping(_) | Frame::Pong(_) => {}
            Frame::Close(_) => return,
        }
    }
});
