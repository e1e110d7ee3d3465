//! A keyed token bucket kept in process memory: enough to blunt password guessing and
//! floods on one process. (Several processes each keep their own buckets, so the
//! effective limit scales with the process count; see README.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Mutex<Buckets>>,
    capacity: f64,
    refill_per_sec: f64,
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
        }
    }

    /// Takes one token for `key`; `Err(wait)` says how long until one is available.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut b = self.inner.lock().expect("rate limiter lock");
        if now.duration_since(b.last_sweep) > Duration::from_secs(60) {
            // Forget keys whose bucket has refilled: memory stays bounded by active keys.
            let (cap, rate) = (self.capacity, self.refill_per_sec);
            b.map.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < cap);
            b.last_sweep = now;
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
}
