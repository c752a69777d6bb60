//! When the planner runs a round: every `round_s`, early for an order about to fall due,
//! and once more right after a round during which another was asked for. Plain state;
//! the planner actor owns the timers.

#[derive(Debug)]
pub struct RoundSchedule {
    /// Early rounds come no closer than this after the last one (`MIN_EARLY_GAP_MS`).
    min_gap_ms: u64,
    running: bool,
    /// A round was asked for while one ran.
    again: bool,
    /// When the next regular round runs.
    next_regular_ms: u64,
    /// An early round already set for this time.
    early_ms: Option<u64>,
    /// When the last round started.
    last_start_ms: Option<u64>,
}

/// Early rounds come no closer than this after the last round by default
/// (`dispatch.min_round_gap_s`): with a backlog, orders fall due (or come back, declined)
/// every few seconds, and a round per order would make the planner's cost grow with the
/// backlog instead of with the city. It is also how late a due order may be offered.
pub const MIN_EARLY_GAP_MS: u64 = 5_000;

impl Default for RoundSchedule {
    fn default() -> Self {
        Self::with_min_gap_ms(MIN_EARLY_GAP_MS)
    }
}

impl RoundSchedule {
    pub fn with_min_gap_ms(min_gap_ms: u64) -> Self {
        Self {
            min_gap_ms,
            running: false,
            again: false,
            next_regular_ms: 0,
            early_ms: None,
            last_start_ms: None,
        }
    }

    /// A regular round is due at `at_ms`.
    pub fn regular_at(&mut self, at_ms: u64) {
        self.next_regular_ms = at_ms;
    }

    /// May a round start now? If one is running, the request is kept for its end.
    pub fn start(&mut self, now_ms: u64) -> bool {
        if self.running {
            self.again = true;
            return false;
        }
        self.running = true;
        self.last_start_ms = Some(now_ms);
        true
    }

    /// The round ended; true if another must run at once.
    pub fn finish(&mut self) -> bool {
        self.running = false;
        std::mem::take(&mut self.again)
    }

    /// An order falls due at `at_ms`: returns `Some(at_ms)` if an early round must be set
    /// for then (replacing any later one), `None` if the regular round or an early one
    /// already comes in time.
    pub fn early_at(&mut self, at_ms: u64) -> Option<u64> {
        let at_ms = match self.last_start_ms {
            Some(last) => at_ms.max(last + self.min_gap_ms),
            None => at_ms,
        };
        if at_ms >= self.next_regular_ms || self.early_ms.is_some_and(|t| t <= at_ms) {
            return None;
        }
        self.early_ms = Some(at_ms);
        Some(at_ms)
    }

    /// The early round's timer fired.
    pub fn early_fired(&mut self) {
        self.early_ms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_asked_for_while_one_runs_runs_right_after_it_once() {
        let mut s = RoundSchedule::default();
        assert!(s.start(0));
        assert!(!s.start(0), "one round at a time");
        assert!(!s.start(0));
        assert!(s.finish(), "the request is kept for the end of the round");
        assert!(s.start(0));
        assert!(!s.finish(), "once");
    }

    #[test]
    fn early_rounds_keep_a_gap_after_the_last_round() {
        let mut s = RoundSchedule::default();
        s.regular_at(30_000);
        assert!(s.start(10_000));
        s.finish();
        assert_eq!(s.early_at(11_000), Some(10_000 + MIN_EARLY_GAP_MS));
        s.early_fired();
        assert_eq!(
            s.early_at(20_000),
            Some(20_000),
            "later than the gap: as asked"
        );
    }

    #[test]
    fn the_gap_is_configurable() {
        let mut s = RoundSchedule::with_min_gap_ms(1_000);
        s.regular_at(30_000);
        assert!(s.start(10_000));
        s.finish();
        assert_eq!(s.early_at(10_200), Some(11_000));
    }

    #[test]
    fn an_early_round_only_when_it_comes_before_every_round_already_set() {
        let mut s = RoundSchedule::default();
        s.regular_at(30_000);
        assert_eq!(s.early_at(40_000), None, "the regular round comes first");
        assert_eq!(s.early_at(20_000), Some(20_000));
        assert_eq!(s.early_at(25_000), None, "an earlier one is set");
        assert_eq!(
            s.early_at(10_000),
            Some(10_000),
            "an even earlier one replaces it"
        );
        s.early_fired();
        assert_eq!(s.early_at(25_000), Some(25_000));
    }
}
