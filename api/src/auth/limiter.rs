//! Login throttling, in memory. Two limits:
//!
//! - attempts per client address within a window (password spraying from one place);
//! - failures per username *and* client address, with a lock that doubles after each
//!   failure past the allowance. Keying failures by username alone would let anyone lock
//!   any account out by failing on purpose; this way the owner, from their own address,
//!   is never locked out by somebody else's guesses.
//!
//! A refused caller gets 429 with `Retry-After`. Per-process, so with several API replicas
//! the limits are per replica.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries beyond this trigger a sweep of expired ones, so memory stays bounded.
const SWEEP_AT: usize = 10_000;
/// The first lock once the allowance is used up; each further failure doubles it, up to
/// the window.
const FIRST_LOCK: Duration = Duration::from_secs(15);

/// A refused attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: u64,
    /// The first refusal of this lock: the one worth an audit row (the rest are counted in
    /// metrics only, so a flood of refused attempts cannot grow the audit log).
    pub first: bool,
}

/// Attempts from one client address in the current window.
struct Attempts {
    start: Instant,
    count: u32,
    /// A refusal in this window was reported.
    reported: bool,
}

/// Failures for one (username, client address).
struct Failures {
    last: Instant,
    count: u32,
    locked_until: Instant,
    /// A refusal during this lock was reported.
    reported: bool,
}

#[derive(Default)]
struct Counters {
    attempts: HashMap<Option<IpAddr>, Attempts>,
    failures: HashMap<(String, Option<IpAddr>), Failures>,
}

pub struct LoginLimiter {
    window: Duration,
    max_failures: u32,
    max_per_ip: u32,
    counters: Mutex<Counters>,
}

impl LoginLimiter {
    pub fn new(window: Duration, max_failures: u32, max_per_ip: u32) -> LoginLimiter {
        LoginLimiter {
            window,
            max_failures,
            max_per_ip,
            counters: Mutex::new(Counters::default()),
        }
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an attempt from `ip` and refuses it if `ip`, or `username` from `ip`, is over
    /// its limit.
    pub fn check(&self, ip: Option<IpAddr>, username: &str) -> Result<(), Throttled> {
        let now = Instant::now();
        let window = self.window;
        let mut c = self.counters();
        if c.attempts.len() + c.failures.len() > SWEEP_AT {
            c.attempts
                .retain(|_, a| now.duration_since(a.start) < window);
            c.failures
                .retain(|_, f| now.duration_since(f.last) < window || f.locked_until > now);
        }
        let a = c.attempts.entry(ip).or_insert(Attempts {
            start: now,
            count: 0,
            reported: false,
        });
        if now.duration_since(a.start) >= window {
            *a = Attempts {
                start: now,
                count: 0,
                reported: false,
            };
        }
        a.count += 1;
        if a.count > self.max_per_ip {
            let first = !std::mem::replace(&mut a.reported, true);
            return Err(throttled(
                window.saturating_sub(now.duration_since(a.start)),
                first,
            ));
        }
        if let Some(f) = c.failures.get_mut(&(username.to_owned(), ip)) {
            if f.locked_until > now {
                let first = !std::mem::replace(&mut f.reported, true);
                return Err(throttled(f.locked_until - now, first));
            }
        }
        Ok(())
    }

    pub fn failed(&self, ip: Option<IpAddr>, username: &str) {
        let now = Instant::now();
        let fresh = Failures {
            last: now,
            count: 0,
            locked_until: now,
            reported: false,
        };
        let mut c = self.counters();
        let f = c.failures.entry((username.to_owned(), ip)).or_insert(fresh);
        if now.duration_since(f.last) >= self.window {
            f.count = 0;
        }
        f.last = now;
        f.count += 1;
        if let Some(past) = f.count.checked_sub(self.max_failures) {
            f.locked_until = now
                + FIRST_LOCK
                    .saturating_mul(1 << past.min(16))
                    .min(self.window);
            f.reported = false;
        }
    }

    pub fn succeeded(&self, ip: Option<IpAddr>, username: &str) {
        self.counters().failures.remove(&(username.to_owned(), ip));
    }
}

fn throttled(left: Duration, first: bool) -> Throttled {
    Throttled {
        retry_after: left.as_secs().max(1),
        first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_lock_the_username_from_that_address_only_and_the_lock_doubles() {
        let limiter = LoginLimiter::new(Duration::from_secs(900), 3, 100);
        let (attacker, owner) = (Some([10, 0, 0, 1].into()), Some([10, 0, 0, 2].into()));
        for _ in 0..3 {
            assert_eq!(limiter.check(attacker, "alice"), Ok(()));
            limiter.failed(attacker, "alice");
        }
        let refused = limiter.check(attacker, "alice").unwrap_err();
        assert!(
            refused.first && (14..=15).contains(&refused.retry_after),
            "{refused:?}"
        );
        assert!(!limiter.check(attacker, "alice").unwrap_err().first);
        assert_eq!(limiter.check(owner, "alice"), Ok(()));
        assert_eq!(limiter.check(attacker, "bob"), Ok(()));
        // One more failure after the lock: twice as long.
        limiter.failed(attacker, "alice");
        let refused = limiter.check(attacker, "alice").unwrap_err();
        assert!((29..=30).contains(&refused.retry_after), "{refused:?}");
        limiter.succeeded(attacker, "alice");
        assert_eq!(limiter.check(attacker, "alice"), Ok(()));
    }

    #[test]
    fn attempts_per_address_are_capped() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 100, 2);
        let ip = Some([10, 0, 0, 1].into());
        assert!(limiter.check(ip, "a").is_ok() && limiter.check(ip, "b").is_ok());
        assert!(limiter.check(ip, "c").unwrap_err().first);
        assert!(!limiter.check(ip, "d").unwrap_err().first);
        assert!(limiter.check(Some([10, 0, 0, 9].into()), "a").is_ok());
    }
}
