//! The wage portal's background work: LCA imports and the demo seed.

use super::demo::SEED_JOB;
use super::import::IMPORT_JOB;
use crate::error::AppError;
use crate::platform::jobs::JobRegistry;
use crate::platform::settings::Settings;
use std::time::Duration;

pub fn register(jobs: &mut JobRegistry, settings: &Settings) {
    // A process killed mid-import leaves it to another runner once the (renewed) lease
    // runs out; re-running is harmless (upserts by case number).
    jobs.register(IMPORT_JOB, settings.part::<super::settings::WagesSettings>().import_lease, 3, |state, job| async move {
        #[derive(serde::Deserialize)]
        struct Payload {
            import: i64,
        }
        let id = job.parse::<Payload>()?.import;
        match super::service::run_import(&state, id).await {
            Ok(p) => {
                tracing::info!(import = id, new = p.rows_new, updated = p.rows_updated, bad = p.rows_bad, "LCA import done");
                Ok(())
            }
            // An unreadable header or a missing upload will not get better by retrying:
            // the import is marked failed with the reason, and the job ends.
            Err(e) if e.status < 500 => {
                tracing::warn!(import = id, error = %e.message, "LCA import failed");
                Ok(())
            }
            Err(e) => Err(e.into_failure()),
        }
    });
    jobs.max_runtime(IMPORT_JOB, Duration::from_secs(6 * 3600));
    jobs.register(SEED_JOB, Duration::from_secs(1800), 3, |state, _| async move {
        super::demo::seed(&state).await.map_err(AppError::into_failure)
    });
}
