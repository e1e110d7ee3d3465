//! The broker's periodic work (sequencing and delivery run as their own loops: see
//! `publish::Sequencer` and `delivery::Dispatcher`).

use crate::error::AppError;
use crate::platform::jobs::JobRegistry;
use crate::platform::settings::Settings;
use std::time::Duration;

/// Deletes delivered messages and their attempt log past `BROKER_RETENTION_DAYS`.
pub const PRUNE_JOB: &str = "broker.prune";

/// Sets `broker_backlog{subscription}` for the System page and /metrics.
pub const BACKLOG_JOB: &str = "broker.report_backlog";

pub fn register(jobs: &mut JobRegistry, settings: &Settings) {
    // Subscriptions reported last time: one whose backlog is gone is set to 0, not left
    // at its last figure.
    let reported = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::<i64>::new()));
    jobs.periodic(BACKLOG_JOB, Duration::from_secs(15), Duration::from_secs(60), move |state, _| {
        let reported = reported.clone();
        async move {
            let backlog = super::store::due_backlog(&state.db.conn).await.map_err(AppError::into_failure)?;
            let mut last = reported.lock().unwrap_or_else(|p| p.into_inner());
            let now: std::collections::BTreeSet<i64> = backlog.iter().map(|(s, _)| *s).collect();
            for gone in last.difference(&now) {
                metrics::gauge!("broker_backlog", "subscription" => gone.to_string()).set(0.0);
            }
            for (subscription, pending) in &backlog {
                metrics::gauge!("broker_backlog", "subscription" => subscription.to_string()).set(*pending as f64);
            }
            *last = now;
            Ok(())
        }
    });
    let retention = settings.part::<super::settings::BrokerSettings>().retention;
    jobs.periodic(PRUNE_JOB, Duration::from_secs(3600), Duration::from_secs(600), move |state, _| async move {
        let pruned = super::service::prune(&state.db, retention).await.map_err(AppError::into_failure)?;
        if pruned > 0 {
            tracing::info!(pruned, "delivered broker messages past their retention deleted");
        }
        Ok(())
    });
}
