//! The soak harness on a small city for two simulated hours: it samples at the hours asked,
//! sees orders being placed and finished, and reads the process's memory.

use dispatch_sim::soak::{self, SoakOptions};

#[test]
fn samples_a_small_city_every_simulated_hour() {
    let opts = SoakOptions {
        hours: 2.0,
        sample_every_h: 1.0,
        orders_per_s: 0.05,
        riders: 30,
        merchants: 5,
        fix_interval_s: 10.0,
        seed: 7,
        avoided_kitchen: true,
        retention_s: 3600.0,
    };
    let mut seen = Vec::new();
    let report = soak::run(&opts, |s| seen.push(s.hour)).expect("soak runs");
    assert_eq!(seen, vec![1.0, 2.0]);
    assert_eq!(report.samples.len(), 2);
    let (first, last) = (&report.samples[0], &report.samples[1]);
    // One order every 20 s on average (each gap 0.5–1.5 of that): ~180 an hour.
    assert!(
        (100..=260).contains(&first.store_orders),
        "{} orders in the first hour",
        first.store_orders
    );
    // Final orders stay for an hour (retention), so the store holds about the last hour's
    // orders, not both hours'.
    assert!(
        (100..=300).contains(&last.store_orders),
        "{} orders kept after two hours",
        last.store_orders
    );
    // Orders finish: far fewer live actors than orders placed.
    assert!(last.live_orders < last.store_orders / 2, "{last:?}");
    assert!(last.escalations >= last.open_escalations);
    assert!(first.rss_bytes > 1024 * 1024 && last.rss_bytes > 1024 * 1024);
    assert!(report.rss_ratio() > 0.0 && report.rss_ratio().is_finite());
    assert!(
        report.assigned_by_hand > 0,
        "the dispatcher assigns the avoided kitchen's orders"
    );
}

#[test]
fn refuses_a_soak_shorter_than_its_first_sample() {
    let opts = SoakOptions {
        hours: 0.5,
        ..SoakOptions::default()
    };
    assert!(soak::run(&opts, |_| {}).is_err());
}
