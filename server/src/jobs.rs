//! Every capability's background jobs, registered in one place.

use app::platform::jobs::JobRegistry;
use std::time::Duration;

pub fn registry() -> JobRegistry {
    let mut jobs = JobRegistry::default();
    jobs.periodic("accounts.sweep_sessions", Duration::from_secs(3600), Duration::from_secs(60), |state, _| async move {
        let removed = app::accounts::service::sweep_sessions(&state.db).await?;
        tracing::info!(removed, "expired sessions swept");
        Ok(())
    });
    jobs.periodic("platform.prune_changes", Duration::from_secs(600), Duration::from_secs(60), |state, _| async move {
        let removed = app::platform::changes::prune(&state.db, Duration::from_secs(24 * 3600)).await?;
        tracing::debug!(removed, "old changes pruned");
        Ok(())
    });
    jobs
}
