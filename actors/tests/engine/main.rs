//! Engine scenarios, driven through the `Engine` facade with no HTTP in front, under
//! tokio's paused clock: every timer runs in virtual time, nothing really sleeps.
//!
//! Riders are driven the way a rider session drives them (`rider_command`) and their
//! outbox is read back to see exactly what the rider app would have been told.
//!
//! One test binary, one module per topic; the harness is in `support`.

mod support;

mod batch;
mod bundles;
mod dispatch;
mod durability;
mod gps_intake;
mod offer_props;
mod offers;
mod props;
mod recovery;
mod riders;
mod supervision;
mod tracker_fixes;
