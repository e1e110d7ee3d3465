//! Chat's hot/cold storage policy, from the environment.

use crate::platform::settings::Vars;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct ChatSettings {
    /// How often expired messages move to cold storage (`SB_CHAT_ARCHIVE_EVERY_SECS`, 30).
    pub archive_every: Duration,
    /// Messages per cold object (`SB_CHAT_ARCHIVE_BATCH`, 5000).
    pub archive_batch: u64,
    /// How long cold objects are kept (`SB_CHAT_COLD_RETENTION_DAYS`; unset or 0: forever).
    pub cold_retention: Option<Duration>,
}

impl ChatSettings {
    pub fn from_vars(env: &Vars) -> Self {
        Self {
            archive_every: Duration::from_secs(env.number("SB_CHAT_ARCHIVE_EVERY_SECS", 30).max(1)),
            archive_batch: env.number("SB_CHAT_ARCHIVE_BATCH", 5000).clamp(1, 100_000),
            cold_retention: Some(env.number::<u64>("SB_CHAT_COLD_RETENTION_DAYS", 0))
                .filter(|d| *d > 0)
                .map(|d| Duration::from_secs(d * 86_400)),
        }
    }
}
