//! Exponential backoff with jitter, shared by the job runner and the webhook broker.

use std::time::Duration;

/// Delay before retry number `attempt` (1 = the first retry): `base · 2^(attempt-1)`,
/// capped at `cap`, then spread by ±10 % so that many failures at once do not retry in
/// lock-step. Never exceeds `cap`.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let nominal = nominal(attempt, base, cap);
    let jitter = 0.9 + rand::random::<f64>() * 0.2;
    nominal.mul_f64(jitter).min(cap)
}

/// The schedule without jitter: what operators read in the docs.
pub fn nominal(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = attempt.saturating_sub(1).min(40);
    base.saturating_mul(1u32 << exp.min(31)).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_base_and_stops_at_the_cap() {
        let (base, cap) = (Duration::from_secs(5), Duration::from_secs(3600));
        let schedule: Vec<u64> = (1..=12).map(|a| nominal(a, base, cap).as_secs()).collect();
        assert_eq!(schedule, [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]);
        assert_eq!(nominal(200, base, cap), cap, "huge attempt counts must not overflow");
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_under_the_cap() {
        let (base, cap) = (Duration::from_millis(1000), Duration::from_millis(5000));
        for attempt in 1..=6 {
            let n = nominal(attempt, base, cap).as_secs_f64();
            for _ in 0..200 {
                let d = backoff(attempt, base, cap).as_secs_f64();
                assert!(d >= n * 0.9 - 1e-9 && d <= (n * 1.1).min(5.0) + 1e-9, "attempt {attempt}: {d}");
            }
        }
    }
}
