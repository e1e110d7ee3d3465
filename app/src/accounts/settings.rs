//! Who may try passwords how often, and who becomes the first administrator.

use crate::platform::settings::Vars;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// Log-in attempts per username and minute (`SB_LOGIN_RATE_PER_USER_PER_MIN`, 10).
    pub login_per_user_per_min: u32,
    /// Log-in attempts per client address and minute (`SB_LOGIN_RATE_PER_MIN`, 30).
    pub login_per_ip_per_min: u32,
    /// Sign-ups per client address and hour (`SB_SIGNUP_RATE_PER_HOUR`, 20).
    pub signup_per_ip_per_hour: u32,
    /// Password hashes computed at once (`SB_PASSWORD_HASH_CONCURRENCY`, default twice
    /// the cores): each takes ~19 MiB, so a flood waits its turn, then gets 503.
    pub hash_concurrency: usize,
    /// How long a password check waits for a hashing slot before answering 503
    /// (`SB_PASSWORD_HASH_WAIT_MS`, 5000).
    pub hash_wait: Duration,
    /// Whether the first account to sign up becomes the administrator
    /// (`SB_FIRST_SIGNUP_ADMIN`; default on for the embedded run only). Elsewhere the
    /// first administrator comes from `server create-admin` or the one-time setup token
    /// the server logs while there is none.
    pub first_signup_admin: bool,
    /// Jobs queued, with the new administrator's id, when the installation's first
    /// administrator signs up on a demo installation (`SB_DEMO_DATA`): other
    /// capabilities' welcome content, named here by the composition so accounts need not
    /// know them.
    pub demo_welcome_jobs: Vec<&'static str>,
}

impl AuthSettings {
    /// `embedded`: the run is on SQLite (the first sign-up becomes admin by default).
    pub fn from_vars(env: &Vars, embedded: bool) -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self {
            login_per_user_per_min: env.number("SB_LOGIN_RATE_PER_USER_PER_MIN", 10).max(1),
            login_per_ip_per_min: env.number("SB_LOGIN_RATE_PER_MIN", 30).max(1),
            signup_per_ip_per_hour: env.number("SB_SIGNUP_RATE_PER_HOUR", 20).max(1),
            hash_concurrency: env.number("SB_PASSWORD_HASH_CONCURRENCY", 2 * cores).max(1),
            hash_wait: Duration::from_millis(env.number("SB_PASSWORD_HASH_WAIT_MS", 5000)),
            first_signup_admin: env.flag("SB_FIRST_SIGNUP_ADMIN", embedded),
            demo_welcome_jobs: Vec::new(),
        }
    }
}
