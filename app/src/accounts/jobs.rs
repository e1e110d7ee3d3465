//! Accounts' background work.

use crate::platform::jobs::JobRegistry;
use std::time::Duration;

/// Deletes sessions past their expiry.
pub const SWEEP_SESSIONS_JOB: &str = "accounts.sweep_sessions";

pub fn register(jobs: &mut JobRegistry) {
    jobs.periodic(SWEEP_SESSIONS_JOB, Duration::from_secs(3600), Duration::from_secs(60), |state, _| async move {
        let removed = super::service::sweep_sessions(&state.db).await?;
        tracing::info!(removed, "expired sessions swept");
        Ok(())
    });
}
