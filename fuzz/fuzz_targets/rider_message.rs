//! A rider socket message (text), differential: the borrowed `LocationFrame` fast path
//! (`parse`) must answer exactly what the general parser through `serde_json::Value`
//! (`parse_general`) answers, for any input. A location that parses then goes through the
//! GPS validator, as the rider's actor would apply it.

#![no_main]

use dispatch_actors::domain::gps::GpsRules;
use dispatch_actors::protocol::RiderCommand;
use dispatchd::ws::fragments::as_text;
use dispatchd::ws::rider::{parse, parse_general};
use libfuzzer_sys::fuzz_target;

const NOW_MS: u64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    // The socket hands the parser text; a binary message that is not UTF-8 reads as "\0".
    let text = as_text(data);
    let fast = parse(text);
    let general = parse_general(text);
    assert_eq!(fast, general, "the fast path disagrees on {text:?}");
    if let Ok(RiderCommand::Location(raw)) = fast {
        let rules = GpsRules {
            max_speed_mps: 70.0,
            max_future_ms: 30_000,
        };
        let _ = rules.check(&raw, None, NOW_MS);
    }
});
