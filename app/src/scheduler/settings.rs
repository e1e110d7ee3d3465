//! The scheduler's settings, from the environment.

use crate::platform::settings::Vars;
use crate::platform::targets::TargetPolicy;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct SchedulerSettings {
    /// Bookings (and cancellations) on the public booking pages per client address and
    /// minute (`SB_BOOKING_RATE_PER_MIN`, 10): a page anyone may use must not be a way to
    /// fill someone's calendar.
    pub booking_rate_per_min: u32,
    /// How often a subscribed calendar is fetched again (`SB_CALENDAR_REFRESH_MINUTES`,
    /// default 60, at least 5).
    pub feed_refresh: Duration,
    /// The largest feed read (`SB_CALENDAR_FEED_MAX_KB`, default 2048): a bigger one is
    /// refused, not truncated.
    pub feed_max_bytes: u64,
    /// How long one fetch may take, redirects and body included
    /// (`SB_CALENDAR_FEED_TIMEOUT_MS`, default 15 s).
    pub feed_timeout: Duration,
    /// Hosts or CIDRs feeds may be fetched from although private or loopback: the same
    /// allow-list as webhook targets (`BROKER_ALLOWED_TARGETS`), and like webhook targets
    /// (which only admins set) for admins' subscriptions only: sign-up is open, and a
    /// member must not reach what the operator opened for internal webhooks.
    pub allowed_targets: Vec<String>,
    /// Subscriptions added, files shown and files imported per user and hour
    /// (`SB_CALENDAR_FILES_PER_HOUR`, default 30): each fetches or parses a file.
    pub files_per_hour: u32,
}

impl SchedulerSettings {
    pub fn from_vars(env: &Vars) -> Self {
        Self {
            booking_rate_per_min: env.number("SB_BOOKING_RATE_PER_MIN", 10).max(1),
            feed_refresh: Duration::from_secs(60 * env.number::<u64>("SB_CALENDAR_REFRESH_MINUTES", 60).max(5)),
            feed_max_bytes: env.number::<u64>("SB_CALENDAR_FEED_MAX_KB", 2048).max(1) << 10,
            // Well within a request's own limit: adding a subscription fetches it at once.
            feed_timeout: Duration::from_millis(env.number("SB_CALENDAR_FEED_TIMEOUT_MS", 15_000).clamp(100, 20_000)),
            allowed_targets: crate::platform::targets::allowed_from(env),
            files_per_hour: env.number("SB_CALENDAR_FILES_PER_HOUR", 30).max(1),
        }
    }

    /// Where a feed may be fetched from: public addresses, and for an admin's
    /// subscription what the allow-list adds.
    pub fn feed_policy(&self, owner_is_admin: bool) -> TargetPolicy {
        TargetPolicy::new(if owner_is_admin { &self.allowed_targets } else { &[] })
    }
}
