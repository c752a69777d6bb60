//! A rider's GPS intake between its socket and its actor: one slot, latest fix wins.
//!
//! Fixes used to go into the rider actor's mailbox one message each. That mailbox has no
//! bound, so when fixes arrived faster than the actor applied them, memory and latency grew
//! with the backlog, and every fix in it was stale by the time it was applied. Only the
//! newest position matters, so a rider has one slot instead: the first fix into an empty
//! slot sends the actor one notice (carrying a [`Ticket`]); a fix arriving while one is
//! still waiting replaces it, and the replaced fix is shed (the caller counts it). The
//! actor takes whatever is waiting when it handles the notice. However fast fixes come, a
//! rider has at most one fix and one notice queued.
//!
//! Other commands keep the mailbox, in order. A fix waiting when one is sent must still
//! reach the actor before it ([`FixSlot::take_before_command`]): see
//! `Engine::rider_command` for why the order between the two matters and how it is kept.
//!
//! Replacing is safe for validation (`domain::gps`): a fix is checked against the last
//! accepted one, and skipping fixes in between never turns a plausible track implausible
//! (the distance over the longer interval is at most the sum of the shorter ones). A shed
//! fix is never validated, so its sender gets no `invalid_location` for it.
//!
//! The slot is a plain struct; the engine and the actor share it behind a mutex held only
//! for these few lines. It holds whatever the caller puts in (the engine puts a fix with
//! where it came from: the rider socket, or a tracking app waiting for the verdict); the
//! rules do not depend on it.

use crate::domain::gps::RawFix;

/// Which notice a waiting fix belongs to. A notice whose fix was taken out ahead of a
/// command finds a later fix with another ticket and leaves it to that fix's own notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// What putting a fix into the slot asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The slot was empty: send the actor one notice with this ticket.
    Notify(Ticket),
    /// A fix was waiting and this one replaced it: one fix shed, no notice to send (the
    /// one already queued delivers this fix).
    Shed,
}

/// One rider's latest-fix-wins slot, holding a `T` (a fix, with whatever travels with it).
#[derive(Debug)]
pub struct FixSlot<T = RawFix> {
    /// The fix waiting for the actor, with the ticket of the notice sent for it.
    waiting: Option<(T, Ticket)>,
    /// The last ticket handed out (tickets only grow, so an old notice never matches).
    last_ticket: u64,
}

impl<T> Default for FixSlot<T> {
    fn default() -> Self {
        Self {
            waiting: None,
            last_ticket: 0,
        }
    }
}

impl<T> FixSlot<T> {
    /// A fix arrives from the rider. A fix it replaces is dropped here (with whatever
    /// travelled with it).
    pub fn put(&mut self, fix: T) -> Put {
        match &mut self.waiting {
            Some((waiting, _)) => {
                *waiting = fix;
                Put::Shed
            }
            None => {
                self.last_ticket += 1;
                let ticket = Ticket(self.last_ticket);
                self.waiting = Some((fix, ticket));
                Put::Notify(ticket)
            }
        }
    }

    /// The actor handles the notice with `ticket`: the fix waiting for it, if still there.
    /// The slot is empty afterwards, so the next fix sends a new notice.
    pub fn take(&mut self, ticket: Ticket) -> Option<T> {
        if self.waiting.as_ref().is_some_and(|(_, t)| *t == ticket) {
            self.waiting.take().map(|(fix, _)| fix)
        } else {
            None
        }
    }

    /// Another command of the rider is about to be queued: the waiting fix, if any, for
    /// the caller to queue ahead of it. Its notice then finds the slot empty (or holding a
    /// later fix with a later ticket) and does nothing.
    pub fn take_before_command(&mut self) -> Option<T> {
        self.waiting.take().map(|(fix, _)| fix)
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fix told apart from the others by its time (ms).
    fn fix(ts_ms: u64) -> RawFix {
        RawFix {
            lat: Some(31.23),
            lon: Some(121.47),
            ts_ms: Some(ts_ms as f64),
            ..Default::default()
        }
    }

    fn notified(p: Put) -> Ticket {
        match p {
            Put::Notify(t) => t,
            Put::Shed => panic!("expected a notice, got a shed"),
        }
    }

    #[test]
    fn the_first_fix_into_an_empty_slot_asks_for_one_notice() {
        let mut slot = FixSlot::default();
        assert!(slot.is_empty());
        let t = notified(slot.put(fix(1)));
        assert!(!slot.is_empty());
        assert_eq!(slot.take(t), Some(fix(1)));
        assert!(slot.is_empty());
    }

    #[test]
    fn fixes_arriving_while_one_waits_replace_it_and_each_counts_as_one_shed() {
        let mut slot = FixSlot::default();
        let t = notified(slot.put(fix(1)));
        let puts: Vec<Put> = (2..=5).map(|ts| slot.put(fix(ts))).collect();
        assert_eq!(puts, vec![Put::Shed; 4], "four replaced, no further notice");
        assert_eq!(slot.take(t), Some(fix(5)), "the latest fix wins");
        assert_eq!(slot.take(t), None, "taken once");
    }

    #[test]
    fn after_a_take_the_next_fix_asks_for_a_new_notice() {
        let mut slot = FixSlot::default();
        let first = notified(slot.put(fix(1)));
        slot.take(first);
        let second = notified(slot.put(fix(2)));
        assert_ne!(first, second);
        assert_eq!(slot.take(first), None, "a spent notice takes nothing");
        assert_eq!(slot.take(second), Some(fix(2)));
    }

    #[test]
    fn a_command_takes_the_waiting_fix_ahead_of_itself() {
        let mut slot = FixSlot::default();
        assert_eq!(slot.take_before_command(), None, "nothing waits");
        let early = notified(slot.put(fix(1)));
        assert_eq!(slot.put(fix(2)), Put::Shed);
        assert_eq!(slot.take_before_command(), Some(fix(2)));
        assert!(slot.is_empty());
        // A fix after the command gets a notice of its own, queued behind the command;
        // the early notice, queued before the command, must not take it.
        let late = notified(slot.put(fix(3)));
        assert_eq!(slot.take(early), None);
        assert_eq!(slot.take(late), Some(fix(3)));
    }
}
