//! Supervisor timers of one actor (order or rider): each armed at an absolute due time in
//! engine milliseconds, with how often it has fired, so a restart can re-arm it at its
//! original due time and the escalation ladder knows which period it is in.

use crate::domain::ladder::Timer;
use crate::store::TimerRecord;
use actix::prelude::*;
use std::collections::HashMap;
use std::time::Duration;

struct Armed {
    /// None once it fired (the record stays: its fire count and due time matter).
    handle: Option<SpawnHandle>,
    fired: u32,
    due_ms: u64,
}

/// What an actor does when one of its timers fires.
pub type OnFire<A> = fn(&mut A, Timer, &mut Context<A>);

#[derive(Default)]
pub struct TimerSet {
    armed: HashMap<Timer, Armed>,
}

impl TimerSet {
    /// Arms `timer` at `due_ms` (replacing an armed one), remembering it fired `fired`
    /// times before. One already due fires at once.
    pub fn arm_at<A>(
        &mut self,
        timer: Timer,
        due_ms: u64,
        fired: u32,
        now_ms: u64,
        ctx: &mut Context<A>,
        on_fire: OnFire<A>,
    ) where
        A: Actor<Context = Context<A>>,
    {
        self.disarm(timer, ctx);
        let delay = Duration::from_millis(due_ms.saturating_sub(now_ms));
        let handle = ctx.run_later(delay, move |act, ctx| on_fire(act, timer, ctx));
        self.armed.insert(
            timer,
            Armed {
                handle: Some(handle),
                fired,
                due_ms,
            },
        );
    }

    /// Arms `timer` `delay_s` after `from_ms` (the event it counts from, not the moment
    /// the code runs), keeping its fire count unless `reset`.
    #[allow(clippy::too_many_arguments)]
    pub fn arm<A>(
        &mut self,
        timer: Timer,
        from_ms: u64,
        delay_s: f64,
        reset: bool,
        now_ms: u64,
        ctx: &mut Context<A>,
        on_fire: OnFire<A>,
    ) where
        A: Actor<Context = Context<A>>,
    {
        let fired = match self.armed.get(&timer) {
            Some(old) if !reset => old.fired,
            _ => 0,
        };
        let due_ms = from_ms + (delay_s.max(0.0) * 1000.0) as u64;
        self.arm_at(timer, due_ms, fired, now_ms, ctx, on_fire);
    }

    pub fn disarm<A>(&mut self, timer: Timer, ctx: &mut Context<A>)
    where
        A: Actor<Context = Context<A>>,
    {
        if let Some(Armed {
            handle: Some(h), ..
        }) = self.armed.remove(&timer)
        {
            ctx.cancel_future(h);
        }
    }

    pub fn disarm_all<A>(&mut self, ctx: &mut Context<A>)
    where
        A: Actor<Context = Context<A>>,
    {
        for (_, a) in self.armed.drain() {
            if let Some(h) = a.handle {
                ctx.cancel_future(h);
            }
        }
    }

    /// Called as `timer` fires: counts the firing; returns how often it has fired now
    /// (None if it was disarmed meanwhile).
    pub fn fired(&mut self, timer: Timer) -> Option<u32> {
        let a = self.armed.get_mut(&timer)?;
        a.handle = None;
        a.fired += 1;
        Some(a.fired)
    }

    /// Due time and fire count of a timer that is armed or has fired.
    pub fn get(&self, timer: Timer) -> Option<(u64, u32)> {
        self.armed.get(&timer).map(|a| (a.due_ms, a.fired))
    }

    /// Is `timer` waiting to fire?
    pub fn is_running(&self, timer: Timer) -> bool {
        self.armed.get(&timer).is_some_and(|a| a.handle.is_some())
    }

    /// The timers still waiting to fire, soonest first (what the store keeps).
    pub fn records(&self) -> Vec<TimerRecord> {
        let mut out: Vec<TimerRecord> = self
            .armed
            .iter()
            .filter(|(_, a)| a.handle.is_some())
            .map(|(t, a)| TimerRecord {
                timer: *t,
                due_ms: a.due_ms,
                fired: a.fired,
            })
            .collect();
        out.sort_by_key(|t| (t.due_ms, t.timer as u8));
        out
    }
}
