//! What every request handler, server function and job can reach.

use super::changes::ChangeHub;
use super::db::Db;
use super::object_store::SharedStore;
use super::parts::Parts;
use super::settings::Settings;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub store: SharedStore,
    pub settings: Arc<Settings>,
    pub changes: ChangeHub,
    pub leptos_options: LeptosOptions,
    /// Seals the secrets the database keeps (webhook signing secrets, feed addresses).
    pub sealer: super::crypto::SecretBox,
    /// Each capability's in-process state (the chat post queue, the credential cache,
    /// the wage copy, …), put in at start-up; see [`Parts`].
    pub parts: Arc<Parts>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl AppState {
    /// A capability's in-process state (see [`Parts`]).
    pub fn part<T: std::any::Any>(&self) -> &T {
        self.parts.get()
    }

    /// Whether the parts this process needs answer now: `[("database", ok),
    /// ("object_store", ok)]`. A part that does not is logged with its cause (which can
    /// name hosts, users and buckets, so callers show only the flag).
    pub async fn readiness(&self) -> [(&'static str, bool); 2] {
        let database = self.db.ping().await.map_err(|e| tracing::warn!(cause = %e, "database is not ready")).is_ok();
        let store = self.store.check().await.map_err(|e| tracing::warn!(cause = %e, "object store is not ready")).is_ok();
        [("database", database), ("object_store", store)]
    }

    /// The state inside a server function (provided by `leptos_routes_with_context`).
    pub fn from_context() -> Result<Self, crate::error::AppError> {
        leptos::prelude::use_context::<AppState>().ok_or_else(|| {
            tracing::error!("AppState missing from the Leptos context");
            crate::error::AppError::internal()
        })
    }
}
