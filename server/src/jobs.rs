//! Every capability's background jobs, registered in one place.

use app::platform::jobs::JobRegistry;
use std::time::Duration;

pub fn registry(settings: &app::platform::settings::Settings) -> JobRegistry {
    let mut jobs = JobRegistry::default();
    let batch = settings.chat.archive_batch;
    jobs.periodic("chat.archive", settings.chat.archive_every, Duration::from_secs(600), move |state, _| async move {
        let report = app::chat::service::archive_expired(&state, batch).await.map_err(|e| anyhow::anyhow!(e.message))?;
        if report.messages > 0 {
            tracing::info!(messages = report.messages, batches = report.batches, "expired chat messages archived");
        }
        Ok(())
    });
    // Runs at start-up too (a periodic job is due when seeded).
    jobs.periodic("meetings.replay_spool", Duration::from_secs(10), Duration::from_secs(300), |state, _| async move {
        let replayed = app::meetings::service::replay_spool(&state).await.map_err(|e| anyhow::anyhow!(e.message))?;
        if replayed > 0 {
            tracing::info!(replayed, "spooled webhooks moved into the database");
        }
        Ok(())
    });
    jobs.periodic("meetings.fold_pending", Duration::from_secs(15), Duration::from_secs(300), |state, _| async move {
        app::meetings::service::fold_pending(&state, 500).await.map_err(|e| anyhow::anyhow!(e.message))?;
        Ok(())
    });
    if let Some(retention) = settings.chat.cold_retention {
        jobs.periodic("chat.retention", Duration::from_secs(3600), Duration::from_secs(600), move |state, _| async move {
            let purged = app::chat::service::purge_cold(&state, retention).await.map_err(|e| anyhow::anyhow!(e.message))?;
            tracing::info!(purged, "chat messages past their cold retention purged");
            Ok(())
        });
    }
    // A process killed mid-import leaves it to another runner once the (renewed) lease
    // runs out; re-running is harmless (upserts by case number).
    jobs.register(app::wages::import::IMPORT_JOB, settings.wages.import_lease, 3, |state, job| async move {
        #[derive(serde::Deserialize)]
        struct Payload {
            import: i64,
        }
        let id = job.parse::<Payload>()?.import;
        match app::wages::service::run_import(&state, id).await {
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
            Err(e) => Err(anyhow::anyhow!(e.message)),
        }
    });
    jobs.max_runtime(app::wages::import::IMPORT_JOB, Duration::from_secs(6 * 3600));
    jobs.register(app::wages::demo::SEED_JOB, Duration::from_secs(1800), 3, |state, _| async move {
        app::wages::demo::seed(&state).await.map_err(|e| anyhow::anyhow!(e.message))
    });
    jobs.periodic("accounts.sweep_sessions", Duration::from_secs(3600), Duration::from_secs(60), |state, _| async move {
        let removed = app::accounts::service::sweep_sessions(&state.db).await?;
        tracing::info!(removed, "expired sessions swept");
        Ok(())
    });
    let retention = settings.broker.retention;
    jobs.periodic("broker.prune", Duration::from_secs(3600), Duration::from_secs(600), move |state, _| async move {
        let pruned = app::broker::service::prune(&state.db, retention).await.map_err(crate::startup::app_failure)?;
        if pruned > 0 {
            tracing::info!(pruned, "delivered broker messages past their retention deleted");
        }
        Ok(())
    });
    jobs.periodic("platform.prune_changes", Duration::from_secs(60), Duration::from_secs(60), |state, _| async move {
        let removed = app::platform::changes::prune(&state.db, app::platform::changes::RETENTION).await?;
        tracing::debug!(removed, "old changes pruned");
        Ok(())
    });
    jobs
}
