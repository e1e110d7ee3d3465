//! Time as the database stores it: milliseconds since the Unix epoch, UTC.

pub mod zones;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

pub type Millis = i64;

pub fn now_ms() -> Millis {
    Utc::now().timestamp_millis()
}

/// Where a component reads "now" from: the system clock, or a clock a test moves by hand
/// (so a test of a lease or a deadline says exactly when time passes instead of sleeping
/// past it and hoping the machine was fast enough).
#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(std::sync::Arc<std::sync::atomic::AtomicI64>),
}

impl Clock {
    /// A clock that stands still at `start` until moved.
    pub fn manual(start: Millis) -> Self {
        Clock::Manual(std::sync::Arc::new(start.into()))
    }

    pub fn now_ms(&self) -> Millis {
        match self {
            Clock::System => now_ms(),
            Clock::Manual(at) => at.load(std::sync::atomic::Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward (the system clock moves by itself).
    pub fn advance(&self, by: std::time::Duration) {
        if let Clock::Manual(at) = self {
            at.fetch_add(by.as_millis() as i64, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

pub fn to_datetime(ms: Millis) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// ISO-8601 / RFC 3339 in UTC with millisecond precision, e.g. `2026-11-22T10:00:00.000Z`.
pub fn to_rfc3339(ms: Millis) -> String {
    to_datetime(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_at_millisecond_precision() {
        let ms = 1_795_000_123_456;
        let text = to_rfc3339(ms);
        assert_eq!(text, "2026-11-18T11:08:43.456Z");
        assert_eq!(parse_rfc3339(&text), Some(ms));
        assert_eq!(parse_rfc3339("2026-11-18T12:08:43.456+01:00"), Some(ms));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
