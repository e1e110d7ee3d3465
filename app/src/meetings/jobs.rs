//! The meetings feed's background work: the spool back into the database, and folding
//! accepted webhooks that the Folder has not reached (another process's, or after a crash).

use crate::error::AppError;
use crate::platform::jobs::JobRegistry;
use std::time::Duration;

/// Moves webhooks spooled to disk while the database was down into the database.
pub const REPLAY_SPOOL_JOB: &str = "meetings.replay_spool";
/// Folds accepted webhooks still waiting into their meetings.
pub const FOLD_PENDING_JOB: &str = "meetings.fold_pending";

pub fn register(jobs: &mut JobRegistry) {
    // Runs at start-up too (a periodic job is due when seeded).
    jobs.periodic(REPLAY_SPOOL_JOB, Duration::from_secs(10), Duration::from_secs(300), |state, _| async move {
        let replayed = super::service::replay_spool(&state).await.map_err(AppError::into_failure)?;
        if replayed > 0 {
            tracing::info!(replayed, "spooled webhooks moved into the database");
        }
        Ok(())
    });
    jobs.periodic(FOLD_PENDING_JOB, Duration::from_secs(15), Duration::from_secs(300), |state, _| async move {
        super::service::fold_pending(&state, 500).await.map_err(AppError::into_failure)?;
        Ok(())
    });
}
