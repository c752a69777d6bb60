//! The actors: thin shells that route messages, hold timers and call the plain logic in
//! `crate::domain` and `crate::matcher`.
//!
//! - [`rider::RiderActor`]: one per rider; GPS intake, status, offers held, silence timers.
//! - [`order::OrderActor`]: one per live order; state machine, dispatch, order timers.
//! - [`merchant::MerchantActor`]: one per merchant; open/closed, menu, pricing.
//! - [`matcher::MatcherActor`]: the R-tree of riders, on its own Arbiter.
//! - [`desk::EscalationDesk`]: the book of escalations.
//! - [`planner::PlannerActor`]: batch dispatch rounds (`dispatch.policy = "batch"`).
//! - [`engine::Engine`]: the facade that creates actors and routes calls by id.

pub mod desk;
pub mod directory;
pub mod engine;
pub mod matcher;
pub mod merchant;
pub mod order;
pub mod planner;
pub mod rider;
pub mod timers;

use crate::clock::Clock;
use crate::config::EngineConfig;
use crate::events::EventBus;
use crate::store::Store;
use actix::Addr;
use std::sync::Arc;

/// What every actor of one engine shares.
pub struct Shared {
    pub cfg: EngineConfig,
    pub clock: Clock,
    pub bus: EventBus,
    pub store: Arc<dyn Store>,
    pub dir: directory::Directory,
    pub matcher: Addr<matcher::MatcherActor>,
    /// Riders' changes for the matcher, taken in batches (`crate::matcher::feed`).
    pub matcher_feed: Arc<crate::matcher::feed::MatcherFeed>,
    pub desk: Addr<desk::EscalationDesk>,
    /// The batch planner; None under `dispatch.policy = "nearest"`.
    pub planner: Option<Addr<planner::PlannerActor>>,
}

impl Shared {
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Refuses a change the store could not take now (Redis away, or still recovering):
    /// nothing unstored is acknowledged.
    pub fn writable(&self) -> Result<(), crate::error::EngineError> {
        if self.store.writable() {
            Ok(())
        } else {
            Err(crate::error::EngineError::Unavailable(
                "the store is unavailable; nothing was changed".into(),
            ))
        }
    }
}
