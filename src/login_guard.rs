//! A growing wait after failed logins, per username and per client IP: after
//! `auth.login_failures_free` failures of a username (four times as many from one IP,
//! which may be shared by many customers) each further attempt must wait `login_delay_s`,
//! doubling per failure up to `login_delay_max_s`; an attempt inside the wait is refused
//! with 429 and `Retry-After` (it does not reach the password check, so it costs no hash).
//! A successful login clears the username's count; the IP's count fades once the IP has
//! been quiet for the longest wait (a login to one's own account must not reset a
//! guesser's address).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Entries kept before idle ones are swept.
const SWEEP_OVER: usize = 10_000;
/// An IP may fail this many times more often than one username before it waits.
const IP_FREE_FACTOR: u32 = 4;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// No attempt before this.
    until: Instant,
    last: Instant,
}

pub struct LoginGuard {
    failures: Mutex<HashMap<Key, Failures>>,
    free: u32,
    base: Duration,
    max: Duration,
}

impl LoginGuard {
    pub fn new(free: u32, base: Duration, max: Duration) -> Self {
        Self {
            failures: Mutex::new(HashMap::new()),
            free,
            base,
            max: max.max(base),
        }
    }

    fn keys(user: &str, ip: Option<IpAddr>) -> impl Iterator<Item = Key> {
        std::iter::once(Key::User(user.to_string())).chain(ip.map(Key::Ip))
    }

    /// Ok, or how long until this username (or this IP) may try again.
    pub fn check(&self, user: &str, ip: Option<IpAddr>) -> Result<(), Duration> {
        self.check_at(user, ip, Instant::now())
    }

    pub fn check_at(&self, user: &str, ip: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let map = self.failures.lock();
        let wait = Self::keys(user, ip)
            .filter_map(|k| map.get(&k))
            .map(|f| f.until.saturating_duration_since(now))
            .max()
            .unwrap_or_default();
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    /// A wrong password (or unknown username): both counts grow.
    pub fn failed(&self, user: &str, ip: Option<IpAddr>) {
        self.failed_at(user, ip, Instant::now());
    }

    pub fn failed_at(&self, user: &str, ip: Option<IpAddr>, now: Instant) {
        let mut map = self.failures.lock();
        if map.len() > SWEEP_OVER {
            let max = self.max;
            map.retain(|_, f| now.saturating_duration_since(f.last) < max);
        }
        for k in Self::keys(user, ip) {
            let f = map.entry(k.clone()).or_insert(Failures {
                count: 0,
                until: now,
                last: now,
            });
            // A key quiet for the longest wait starts over.
            if now.saturating_duration_since(f.last) >= self.max {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
            let free = match k {
                Key::User(_) => self.free,
                Key::Ip(_) => self.free.saturating_mul(IP_FREE_FACTOR),
            };
            f.until = now + self.delay(f.count, free);
        }
    }

    /// The wait after the `count`th failure in a row, the first `free` costing none.
    pub fn delay(&self, count: u32, free: u32) -> Duration {
        if count <= free {
            return Duration::ZERO;
        }
        let doublings = (count - free - 1).min(30);
        self.base
            .checked_mul(1 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// A successful login clears the username's count.
    pub fn succeeded(&self, user: &str) {
        self.failures.lock().remove(&Key::User(user.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> LoginGuard {
        LoginGuard::new(2, Duration::from_secs(1), Duration::from_secs(8))
    }

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, n]))
    }

    #[test]
    fn the_wait_doubles_after_the_free_failures_up_to_the_cap() {
        let g = guard();
        let waits: Vec<u64> = (1..=8).map(|n| g.delay(n, 2).as_secs()).collect();
        assert_eq!(waits, [0, 0, 1, 2, 4, 8, 8, 8]);
        assert_eq!(g.delay(u32::MAX, 2), Duration::from_secs(8));
    }

    #[test]
    fn failures_lock_the_username_and_the_ip_and_success_clears_the_username() {
        let g = guard();
        let t0 = Instant::now();
        for _ in 0..3 {
            g.failed_at("ann", ip(1), t0);
        }
        // Third failure: one second's wait for the username, from anywhere...
        assert_eq!(g.check_at("ann", ip(9), t0), Err(Duration::from_secs(1)));
        // ...while the address (shared, maybe) has 8 free failures.
        assert_eq!(g.check_at("bob", ip(1), t0), Ok(()));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(g.check_at("ann", ip(1), t1), Ok(()));
        g.failed_at("ann", ip(1), t1);
        assert_eq!(g.check_at("ann", ip(9), t1), Err(Duration::from_secs(2)));
        g.succeeded("ann");
        assert_eq!(g.check_at("ann", ip(9), t1), Ok(()), "username cleared");
        // A guesser trying many usernames from one address: the ninth failure waits.
        for (n, user) in ["u1", "u2", "u3", "u4", "u5"].into_iter().enumerate() {
            g.failed_at(user, ip(1), t1);
            assert_eq!(g.check_at("bob", ip(1), t1).is_err(), n == 4, "{n}");
        }
        assert_eq!(g.check_at("bob", ip(1), t1), Err(Duration::from_secs(1)));
        g.succeeded("u5");
        assert!(
            g.check_at("bob", ip(1), t1).is_err(),
            "the address is not cleared"
        );
    }

    #[test]
    fn a_quiet_key_starts_over() {
        let g = guard();
        let t0 = Instant::now();
        for _ in 0..6 {
            g.failed_at("ann", None, t0);
        }
        assert_eq!(g.check_at("ann", None, t0), Err(Duration::from_secs(8)));
        let later = t0 + Duration::from_secs(20);
        g.failed_at("ann", None, later);
        assert_eq!(g.check_at("ann", None, later), Ok(()), "count back to 1");
    }
}
