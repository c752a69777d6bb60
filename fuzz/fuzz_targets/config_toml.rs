//! The config loader (`Settings::from_toml`, what `Settings::load` does with a file's
//! text, without the environment).
//!
//! Checked: accepted settings are ones the server can start and run with: every duration
//! it derives converts (no `Duration` panic), every engine deadline computed from them
//! fits the clock for centuries (no `u64` overflow when added to a timestamp), and the
//! derived engine and store configuration can be built.

#![no_main]

use dispatch_actors::config::secs;
use dispatchd::settings::Settings;
use dispatchd::ws::PumpOpts;
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

/// A wall-clock timestamp in ms a while from now (the year 2200).
const LATE_MS: u64 = 7_258_118_400_000;

/// `ts_ms + s` seconds, as the engine's timers compute a due time.
fn due(s: f64) {
    let delay_ms = (s.max(0.0) * 1000.0) as u64;
    assert!(
        LATE_MS.checked_add(delay_ms).is_some(),
        "{s} s overflows a deadline"
    );
    assert!(
        Duration::try_from_secs_f64(s.max(0.0)).is_ok(),
        "{s} s is no Duration"
    );
    let _ = secs(s);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(s) = Settings::from_toml(text) else {
        return;
    };
    let t = &s.timers;
    for v in [
        t.merchant_accept_s,
        t.offer_ttl_s,
        t.dispatch_remind_s,
        t.pickup_late_s,
        t.delivery_timeout_s,
        t.rider_silent_s,
        t.rider_lost_s,
        s.dispatch.round_s,
        s.dispatch.next_job_s,
        s.dispatch.retry_interval_s,
        s.retention.final_s,
        s.server.heartbeat_interval_s,
        s.server.client_timeout_s,
        s.server.ws_send_timeout_s,
        s.gps.interval_s,
    ] {
        due(v);
    }
    // The longest travel estimate: half the Earth's circumference at the configured speed.
    due(20_037_508.0 / s.dispatch.speed_mps);
    assert!(LATE_MS.checked_add(s.gps.max_future_ms).is_some());
    let engine = s.engine_config();
    assert!(engine.dispatch.max_radius_m >= engine.dispatch.initial_radius_m);
    let _ = s.store.memory_limits(&s.retention);
    let _ = s.store.redis_config();
    let _ = PumpOpts::from_settings(&s.server, "fuzz");
    let _ = Duration::from_millis(s.dashboard.update_interval_ms);
});
