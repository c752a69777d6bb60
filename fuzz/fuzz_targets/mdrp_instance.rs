//! An MDRP instance (`dispatchd replay --instance DIR` reads one): the input is split into
//! the four files at 0x00 bytes (instance_parameters.txt, restaurants.txt, orders.txt,
//! couriers.txt) and read by `Instance::parse`, the reader `Instance::load` uses.
//!
//! Checked: an accepted instance is one the replay can run: a positive, finite speed,
//! finite coordinates, every order's restaurant known, and every time the replay computes
//! (a minute of the day plus travel between places the instance names plus service
//! minutes, in milliseconds) fits the clock (no overflow).

#![no_main]

use dispatch_sim::mdrp::instance::{travel_min, Instance, InstanceTexts};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut files = text.splitn(4, '\0');
    let texts = InstanceTexts {
        instance_parameters: files.next().unwrap_or_default(),
        restaurants: files.next().unwrap_or_default(),
        orders: files.next().unwrap_or_default(),
        couriers: files.next().unwrap_or_default(),
    };
    let Ok(inst) = Instance::parse("fuzz".into(), Path::new("fuzz"), texts) else {
        return;
    };
    let speed = inst.params.meters_per_minute;
    assert!(speed.is_finite() && speed > 0.0, "speed {speed}");
    for r in &inst.restaurants {
        assert!(r.x.is_finite() && r.y.is_finite(), "{r:?}");
    }
    for c in &inst.couriers {
        assert!(c.x.is_finite() && c.y.is_finite(), "{c:?}");
    }
    // The latest minute the replay can reach: the last shift end or order time.
    let horizon = inst
        .couriers
        .iter()
        .map(|c| c.off.max(c.on))
        .chain(inst.orders.iter().map(|o| o.placement.max(o.ready)))
        .max()
        .unwrap_or(0);
    let service = inst
        .params
        .pickup_service_min
        .checked_add(inst.params.dropoff_service_min);
    // A time the replay computes: a clock minute plus travel and service, in milliseconds.
    let fits = |parts: &[u64]| {
        parts
            .iter()
            .try_fold(0u64, |a, b| a.checked_add(*b))
            .and_then(|m| m.checked_mul(60_000))
            .is_some()
    };
    for o in &inst.orders {
        assert!(o.x.is_finite() && o.y.is_finite(), "{o:?}");
        let r = inst.restaurant(&o.restaurant).expect("known restaurant");
        let legs = [
            travel_min((r.x, r.y), (o.x, o.y), speed),
            travel_min((o.x, o.y), (r.x, r.y), speed),
        ];
        for c in &inst.couriers {
            let to_food = travel_min((c.x, c.y), (r.x, r.y), speed);
            for leg in legs {
                let service = service.expect("service minutes overflow");
                assert!(
                    fits(&[horizon, to_food, leg, service]),
                    "times overflow the replay's clock"
                );
            }
        }
    }
    let _ = inst.until(horizon / 2);
});
