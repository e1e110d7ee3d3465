//! The broker's delivery policy, from the environment (see README for the variables).

use crate::platform::settings::Vars;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct BrokerSettings {
    /// First retry delay; doubles each attempt (`BROKER_RETRY_BASE_MS`, default 5 s).
    pub retry_base: Duration,
    /// Longest retry delay (`BROKER_RETRY_MAX_MS`, default 1 h).
    pub retry_max: Duration,
    /// Attempts before the subscription's failure policy applies (`BROKER_MAX_ATTEMPTS`,
    /// default 33: about 24 h with the default delays).
    pub max_attempts: i32,
    /// A delivery succeeds on a 2xx within this time (`BROKER_TIMEOUT_MS`, default 15 s).
    pub timeout: Duration,
    /// Lanes delivered at once by one process (`BROKER_CONCURRENCY`, default 32).
    pub concurrency: usize,
    /// Hosts or CIDRs that may be delivered to although private, loopback or link-local
    /// (`BROKER_ALLOWED_TARGETS`, comma-separated; default none).
    pub allowed_targets: Vec<String>,
    /// How long delivered messages and their attempt log are kept
    /// (`BROKER_RETENTION_DAYS`, default 30).
    pub retention: Duration,
    /// The built-in demo receiver's base URL on this server's own address; set at
    /// start-up when the demo is on (`SB_DEMO_DATA`), else none.
    pub demo_receiver: Option<String>,
}

impl BrokerSettings {
    pub fn from_vars(env: &Vars) -> Self {
        Self {
            retry_base: Duration::from_millis(env.number("BROKER_RETRY_BASE_MS", 5_000)),
            retry_max: Duration::from_millis(env.number("BROKER_RETRY_MAX_MS", 3_600_000)),
            max_attempts: env.number("BROKER_MAX_ATTEMPTS", 33).max(1),
            timeout: Duration::from_millis(env.number("BROKER_TIMEOUT_MS", 15_000)),
            concurrency: env.number("BROKER_CONCURRENCY", 32).max(1),
            allowed_targets: crate::platform::targets::allowed_from(env),
            retention: Duration::from_secs(86_400 * env.number::<u64>("BROKER_RETENTION_DAYS", 30).max(1)),
            demo_receiver: None,
        }
    }
}
