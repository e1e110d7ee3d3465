//! Chat's background work: expired messages to cold storage, and cold storage's retention.

use super::settings::ChatSettings;
use crate::error::AppError;
use crate::platform::jobs::JobRegistry;
use crate::platform::settings::Settings;
use std::time::Duration;

/// Moves expired messages from the database into the object store.
pub const ARCHIVE_JOB: &str = "chat.archive";
/// Deletes cold messages past `SB_CHAT_COLD_RETENTION_DAYS` (registered only when set).
pub const RETENTION_JOB: &str = "chat.retention";

pub fn register(jobs: &mut JobRegistry, settings: &Settings) {
    let chat = settings.part::<ChatSettings>();
    let batch = chat.archive_batch;
    jobs.periodic(ARCHIVE_JOB, chat.archive_every, Duration::from_secs(600), move |state, _| async move {
        let report = super::service::archive_expired(&state, batch).await.map_err(AppError::into_failure)?;
        metrics::gauge!("chat_archive_last_run_timestamp_seconds").set(crate::platform::time::now_ms() as f64 / 1000.0);
        if report.messages > 0 {
            tracing::info!(messages = report.messages, batches = report.batches, "expired chat messages archived");
        }
        Ok(())
    });
    if let Some(retention) = chat.cold_retention {
        jobs.periodic(RETENTION_JOB, Duration::from_secs(3600), Duration::from_secs(600), move |state, _| async move {
            let purged = super::service::purge_cold(&state, retention).await.map_err(AppError::into_failure)?;
            tracing::info!(purged, "chat messages past their cold retention purged");
            Ok(())
        });
    }
}
