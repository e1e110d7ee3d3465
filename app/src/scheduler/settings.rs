//! The scheduler's settings, from the environment.

use crate::platform::settings::Vars;

#[derive(Clone, Debug)]
pub struct SchedulerSettings {
    /// Bookings (and cancellations) on the public booking pages per client address and
    /// minute (`SB_BOOKING_RATE_PER_MIN`, 10): a page anyone may use must not be a way to
    /// fill someone's calendar.
    pub booking_rate_per_min: u32,
}

impl SchedulerSettings {
    pub fn from_vars(env: &Vars) -> Self {
        Self { booking_rate_per_min: env.number("SB_BOOKING_RATE_PER_MIN", 10).max(1) }
    }
}
