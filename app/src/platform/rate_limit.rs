//! A keyed token bucket kept in process memory: enough to blunt password guessing and
//! floods on one process. (Several processes each keep their own buckets, so the
//! effective limit scales with the process count; see README.)
//!
//! Memory is bounded whatever the keys: a key is cut to [`MAX_KEY_BYTES`], and the map
//! holds at most `max_keys` buckets. When it is full of live buckets (a flood of distinct
//! keys), the least recently used bucket is forgotten for the new key. That never locks
//! strangers out (refusing new keys would let a flood of junk keys shut everyone out),
//! and what it forgets is the quietest key's history, not the flood's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest key kept; longer ones are cut (keys are usernames, addresses, …).
pub const MAX_KEY_BYTES: usize = 64;
/// Buckets kept at most by default (about 100 bytes each).
pub const DEFAULT_MAX_KEYS: usize = 100_000;

#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Mutex<Buckets>>,
    capacity: f64,
    refill_per_sec: f64,
    max_keys: usize,
}

struct Buckets {
    map: HashMap<String, (f64, Instant)>,
    last_sweep: Instant,
}

impl RateLimiter {
    /// Allows bursts of `capacity`, refilled at `capacity` per `period`.
    pub fn new(capacity: u32, period: Duration) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Buckets { map: HashMap::new(), last_sweep: Instant::now() })),
            capacity: capacity as f64,
            refill_per_sec: capacity as f64 / period.as_secs_f64(),
            max_keys: DEFAULT_MAX_KEYS,
        }
    }

    /// Keeps at most `max_keys` buckets.
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    fn sweep(&self, b: &mut Buckets, now: Instant) {
        // Forget keys whose bucket has refilled: they behave exactly like new keys.
        let (cap, rate) = (self.capacity, self.refill_per_sec);
        b.map.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < cap);
        b.last_sweep = now;
    }

    /// Takes one token for `key`, or answers 429 saying "too many {what}" and when to
    /// retry (and logs it).
    pub fn take(&self, key: &str, what: &str) -> Result<(), crate::error::AppError> {
        self.check(key).map_err(|wait| {
            tracing::warn!(key, what, "rate limited");
            crate::error::AppError::too_many_requests(format!("too many {what}; retry in {} s", wait.as_secs().max(1)))
        })
    }

    /// Takes one token for `key`; `Err(wait)` says how long until one is available.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let key = cut(key);
        let mut b = self.inner.lock().expect("rate limiter lock");
        if now.duration_since(b.last_sweep) > Duration::from_secs(60) {
            self.sweep(&mut b, now);
        }
        if !b.map.contains_key(key) && b.map.len() >= self.max_keys {
            self.sweep(&mut b, now);
            if b.map.len() >= self.max_keys {
                // O(keys), only while full: bounded work for bounded memory.
                if let Some(oldest) = b.map.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| k.clone()) {
                    b.map.remove(&oldest);
                }
            }
        }
        let (tokens, at) = b.map.entry(key.to_owned()).or_insert((self.capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.refill_per_sec).min(self.capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.refill_per_sec))
        }
    }
}

/// `key` cut to at most [`MAX_KEY_BYTES`] on a character boundary.
fn cut(key: &str) -> &str {
    if key.len() <= MAX_KEY_BYTES {
        return key;
    }
    let mut end = MAX_KEY_BYTES;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_refuses_per_key() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.check("ada").is_ok());
        }
        let wait = limiter.check("ada").unwrap_err();
        assert!(wait > Duration::from_secs(15) && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(limiter.check("grace").is_ok(), "other keys are unaffected");
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_distinct_keys() {
        let limiter = RateLimiter::new(2, Duration::from_secs(3600)).with_max_keys(100);
        for i in 0..100 {
            assert!(limiter.check(&format!("user{i}")).is_ok());
            std::thread::sleep(Duration::from_micros(50)); // distinct last-use times
        }
        assert!(limiter.check("user5").is_ok(), "known keys keep their bucket");
        assert!(limiter.check("stranger").is_ok(), "a full map never locks a newcomer out");
        let b = limiter.inner.lock().unwrap();
        assert_eq!(b.map.len(), 100, "memory stays bounded");
        assert!(!b.map.contains_key("user0") && b.map.contains_key("user5"), "the least recently used bucket went");
        drop(b);
        // Long keys are cut: two keys differing only past the cut share one bucket.
        let long = RateLimiter::new(1, Duration::from_secs(3600));
        let a = format!("{}a", "x".repeat(MAX_KEY_BYTES));
        let b = format!("{}b", "x".repeat(MAX_KEY_BYTES));
        assert!(long.check(&a).is_ok());
        assert!(long.check(&b).is_err());
        assert!(long.inner.lock().unwrap().map.keys().all(|k| k.len() <= MAX_KEY_BYTES));
    }
}
