//! The broker's periodic work (sequencing and delivery run as their own loops: see
//! `publish::Sequencer` and `delivery::Dispatcher`).

use crate::error::AppError;
use crate::platform::jobs::JobRegistry;
use crate::platform::settings::Settings;
use std::time::Duration;

/// Deletes delivered messages and their attempt log past `BROKER_RETENTION_DAYS`.
pub const PRUNE_JOB: &str = "broker.prune";

pub fn register(jobs: &mut JobRegistry, settings: &Settings) {
    let retention = settings.part::<super::settings::BrokerSettings>().retention;
    jobs.periodic(PRUNE_JOB, Duration::from_secs(3600), Duration::from_secs(600), move |state, _| async move {
        let pruned = super::service::prune(&state.db, retention).await.map_err(AppError::into_failure)?;
        if pruned > 0 {
            tracing::info!(pruned, "delivered broker messages past their retention deleted");
        }
        Ok(())
    });
}
