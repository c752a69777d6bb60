//! The one way in for every tracking app's fix, whatever its format: the device names
//! the rider, the rider's fix rate limit applies, and the fix goes into the rider's
//! latest-fix-wins slot through [`RiderHandle::tracker_fix`], the entry point the rider
//! socket's `location` uses too. So a tracker fix meets the same validator, resets the
//! same silence timers and reaches the matcher the same way; only its verdict comes back
//! to the caller instead of going to the rider's socket.

use super::devices::DeviceRegistry;
use super::fix::TrackerFix;
use crate::errors::ApiError;
use crate::ratelimit::KeyedLimiter;
use dispatch_actors::domain::gps::FixVerdict;
use dispatch_actors::domain::RiderId;
use dispatch_actors::error::EngineError;
use dispatch_actors::{metric_names, Engine};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Which app format a fix came in (the `source` label of `dispatch_tracker_fixes_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    OsmAnd,
    TraccarJson,
    OwnTracksHttp,
    OwnTracksMqtt,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::OsmAnd,
        Source::TraccarJson,
        Source::OwnTracksHttp,
        Source::OwnTracksMqtt,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Source::OsmAnd => "osmand",
            Source::TraccarJson => "traccar_json",
            Source::OwnTracksHttp => "owntracks_http",
            Source::OwnTracksMqtt => "owntracks_mqtt",
        }
    }
}

/// How one tracker fix ended (the `outcome` label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored: the rider's position now.
    Accepted,
    /// Not newer than the rider's last accepted fix: ignored, as on the socket.
    OutOfOrder,
    /// Replaced in the rider's slot by a newer fix before it was checked (latest fix
    /// wins): the newer one stands for it.
    Superseded,
    /// Unreadable, or refused by the validator: nothing stored.
    Invalid(String),
    /// No registered (or no longer registered) device by that id, or not that rider's.
    UnknownDevice,
    /// Over the rider's fix rate limit.
    RateLimited,
    /// The MQTT intake's queue was full: the message was dropped unread.
    Dropped,
    /// The rider's actor did not answer in time (or is not rebuilt yet after a restart).
    Unavailable,
}

impl Outcome {
    pub const LABELS: [&'static str; 8] = [
        "accepted",
        "out_of_order",
        "superseded",
        "invalid",
        "unknown_device",
        "rate_limited",
        "dropped",
        "unavailable",
    ];

    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::OutOfOrder => "out_of_order",
            Outcome::Superseded => "superseded",
            Outcome::Invalid(_) => "invalid",
            Outcome::UnknownDevice => "unknown_device",
            Outcome::RateLimited => "rate_limited",
            Outcome::Dropped => "dropped",
            Outcome::Unavailable => "unavailable",
        }
    }

    /// The HTTP answer: 200 for a fix the server now has (or a newer one of the same
    /// rider, or one it ignores as the socket would: an app that buffers fixes while
    /// offline must be able to move on), else the error.
    pub fn into_result(self) -> Result<(), ApiError> {
        match self {
            Outcome::Accepted | Outcome::OutOfOrder | Outcome::Superseded => Ok(()),
            Outcome::Invalid(why) => Err(ApiError::invalid(why)),
            Outcome::UnknownDevice => Err(ApiError::not_found("unknown or revoked device")),
            Outcome::RateLimited => Err(ApiError::RateLimited { retry_after_s: 1 }),
            Outcome::Dropped | Outcome::Unavailable => Err(ApiError::unavailable(
                "the fix could not be taken now; retry",
            )),
        }
    }
}

fn outcome_of(verdict: FixVerdict) -> Outcome {
    match verdict {
        FixVerdict::Accept(_) => Outcome::Accepted,
        FixVerdict::Ignore => Outcome::OutOfOrder,
        FixVerdict::Reject(why) => Outcome::Invalid(why),
    }
}

/// Counts one fix's outcome in `dispatch_tracker_fixes_total{source,outcome}`.
pub fn record(source: Source, outcome: &Outcome) {
    metrics::counter!(metric_names::TRACKER_FIXES_TOTAL,
        "source" => source.label(), "outcome" => outcome.label())
    .increment(1);
}

/// A fix handed to its rider, its verdict still to come.
enum Pending {
    /// The rider's actor is on this node.
    Here(oneshot::Receiver<FixVerdict>),
    /// On another node (or taken up here): the mesh brings the verdict (None: a newer
    /// fix took its place).
    Elsewhere(BoxFuture<'static, Result<Option<FixVerdict>, EngineError>>),
}

pub struct Intake {
    engine: Engine,
    pub devices: DeviceRegistry,
    /// Per rider, the same allowance as a rider socket's fixes.
    limits: KeyedLimiter<String>,
    /// `ingest.sets_online`: an accepted fix puts an offline rider online.
    sets_online: bool,
    /// How long a request waits for its fix's verdict before answering 503.
    verdict_timeout: Duration,
}

impl Intake {
    pub fn new(
        engine: Engine,
        devices: DeviceRegistry,
        limits: KeyedLimiter<String>,
        sets_online: bool,
    ) -> Self {
        Self {
            engine,
            devices,
            limits,
            sets_online,
            verdict_timeout: Duration::from_secs(5),
        }
    }

    /// The rider `device` reports for; with `expect`, only if it is that rider's. Not
    /// found while a restart is still restoring devices: `Unavailable` (retry), not
    /// `UnknownDevice`.
    pub async fn identify(
        &self,
        device: &str,
        expect: Option<&RiderId>,
    ) -> Result<RiderId, Outcome> {
        match self.devices.lookup(device).await {
            Ok(Some(r)) if expect.is_none_or(|e| *e == r) => Ok(r),
            Err(_) => Err(Outcome::Unavailable),
            _ if !self.devices.is_complete() => Err(Outcome::Unavailable),
            _ => Err(Outcome::UnknownDevice),
        }
    }

    /// Parses, identifies, rate-limits and hands the fix to its rider, then waits for
    /// its verdict; counts and returns the outcome.
    pub async fn submit(
        &self,
        source: Source,
        parsed: Result<TrackerFix, String>,
        expect: Option<&RiderId>,
    ) -> Outcome {
        let outcome = match self.start(parsed, expect).await {
            Ok(pending) => self.finish(pending).await,
            Err(o) => o,
        };
        record(source, &outcome);
        outcome
    }

    /// [`Intake::submit`] for a caller that does not wait (MQTT): the verdict is awaited
    /// and counted on a task of its own.
    pub fn submit_detached(self: &Arc<Self>, source: Source, parsed: Result<TrackerFix, String>) {
        let this = self.clone();
        tokio::spawn(async move {
            let outcome = match this.start(parsed, None).await {
                Ok(pending) => this.finish(pending).await,
                Err(o) => o,
            };
            record(source, &outcome);
        });
    }

    async fn start(
        &self,
        parsed: Result<TrackerFix, String>,
        expect: Option<&RiderId>,
    ) -> Result<Pending, Outcome> {
        let fix = parsed.map_err(Outcome::Invalid)?;
        let device = fix.device_id.as_deref().unwrap_or_default();
        let rider = self.identify(device, expect).await?;
        if !self.limits.allow(&rider.as_str().to_string()) {
            metrics::counter!(metric_names::RATE_LIMITED_TOTAL, "what" => "tracker").increment(1);
            return Err(Outcome::RateLimited);
        }
        let pending = match self.engine.rider_handle(&rider) {
            Ok(handle) => Pending::Here(handle.tracker_fix(fix.raw(), self.sets_online)),
            // Its actor is on another node, or nowhere yet (several nodes): the engine
            // takes the fix there. A single node answers not found: restoring, retry.
            Err(_) => {
                let engine = self.engine.clone();
                let (raw, online) = (fix.raw(), self.sets_online);
                Pending::Elsewhere(Box::pin(async move {
                    engine.tracker_fix_elsewhere(&rider, raw, online).await
                }))
            }
        };
        Ok(pending)
    }

    async fn finish(&self, pending: Pending) -> Outcome {
        let verdict = match pending {
            Pending::Here(rx) => match tokio::time::timeout(self.verdict_timeout, rx).await {
                Ok(Ok(verdict)) => Some(verdict),
                // Dropped unanswered: a newer fix of the rider replaced it in the slot.
                Ok(Err(_)) => None,
                Err(_) => return Outcome::Unavailable,
            },
            Pending::Elsewhere(f) => match tokio::time::timeout(self.verdict_timeout, f).await {
                Ok(Ok(verdict)) => verdict,
                Ok(Err(_)) | Err(_) => return Outcome::Unavailable,
            },
        };
        verdict.map_or(Outcome::Superseded, outcome_of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_the_protocols_answers() {
        for ok in [Outcome::Accepted, Outcome::OutOfOrder, Outcome::Superseded] {
            assert_eq!(ok.into_result(), Ok(()));
        }
        let code = |o: Outcome| o.into_result().unwrap_err().code();
        assert_eq!(code(Outcome::Invalid("lat".into())), "invalid_input");
        assert_eq!(code(Outcome::UnknownDevice), "not_found");
        assert_eq!(code(Outcome::RateLimited), "rate_limited");
        assert_eq!(code(Outcome::Unavailable), "unavailable");
    }

    #[test]
    fn every_outcome_has_a_registered_label() {
        for o in [
            Outcome::Accepted,
            Outcome::OutOfOrder,
            Outcome::Superseded,
            Outcome::Invalid(String::new()),
            Outcome::UnknownDevice,
            Outcome::RateLimited,
            Outcome::Dropped,
            Outcome::Unavailable,
        ] {
            assert!(Outcome::LABELS.contains(&o.label()), "{o:?}");
        }
    }
}
