//! Login throttling, in memory: attempts per client IP and failures per username within a
//! window. A locked-out caller gets 429 with `Retry-After`. Per-process, so with several API
//! replicas the limit is per replica.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::Error;

/// Entries beyond this trigger a sweep of expired windows, so memory stays bounded.
const SWEEP_AT: usize = 10_000;

pub struct LoginLimiter {
    window: Duration,
    max_failures: u32,
    max_per_ip: u32,
    counters: Mutex<HashMap<String, (Instant, u32)>>,
}

impl LoginLimiter {
    pub fn new(window: Duration, max_failures: u32, max_per_ip: u32) -> LoginLimiter {
        LoginLimiter {
            window,
            max_failures,
            max_per_ip,
            counters: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt from `ip` and refuses it if `ip` or `username` is over its limit.
    pub fn check(&self, ip: Option<&str>, username: &str) -> Result<(), Error> {
        let now = Instant::now();
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if counters.len() > SWEEP_AT {
            counters.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        if let Some(ip) = ip {
            let (start, count) = self.bump(&mut counters, format!("ip:{ip}"), now);
            if count > self.max_per_ip {
                return Err(self.retry(start, now));
            }
        }
        if let Some(&(start, count)) = counters.get(&format!("user:{username}")) {
            if now.duration_since(start) < self.window && count >= self.max_failures {
                return Err(self.retry(start, now));
            }
        }
        Ok(())
    }

    pub fn failed(&self, username: &str) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        self.bump(&mut counters, format!("user:{username}"), Instant::now());
    }

    pub fn succeeded(&self, username: &str) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        counters.remove(&format!("user:{username}"));
    }

    fn bump(
        &self,
        counters: &mut HashMap<String, (Instant, u32)>,
        key: String,
        now: Instant,
    ) -> (Instant, u32) {
        let entry = counters.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        *entry
    }

    fn retry(&self, start: Instant, now: Instant) -> Error {
        let left = self.window.saturating_sub(now.duration_since(start));
        Error::TooManyRequests {
            retry_after: left.as_secs().max(1),
        }
    }
}
