//! Request rate limits per client address and per credential: token buckets in memory that
//! refill at the configured rate per minute and hold a minute's worth, so short bursts pass
//! and sustained floods get 429 with `Retry-After`. Per-process, like the login limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets beyond this trigger a sweep of full (idle) ones, so memory stays bounded.
const SWEEP_AT: usize = 10_000;

pub struct RateLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// None when `per_minute` is 0 (no limit).
    pub fn new(per_minute: u32) -> Option<RateLimiter> {
        (per_minute > 0).then(|| RateLimiter {
            per_minute: f64::from(per_minute),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one request from `key`'s bucket; when it is empty, the seconds until it is not.
    pub fn take(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let per_second = self.per_minute / 60.0;
        let level = |(tokens, at): (f64, Instant)| {
            (tokens + now.duration_since(at).as_secs_f64() * per_second).min(self.per_minute)
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > SWEEP_AT {
            buckets.retain(|_, b| level(*b) < self.per_minute);
        }
        let bucket = buckets
            .entry(key.to_owned())
            .or_insert((self.per_minute, now));
        let tokens = level(*bucket);
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            Ok(())
        } else {
            *bucket = (tokens, now);
            Err(((1.0 - tokens) / per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_of_burst_then_refusals_with_a_wait() {
        assert!(RateLimiter::new(0).is_none());
        let limiter = RateLimiter::new(3).unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.take("a"), Ok(()));
        }
        let wait = limiter.take("a").unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert_eq!(limiter.take("b"), Ok(()));
    }
}
