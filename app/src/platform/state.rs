//! What every request handler, server function and job can reach.

use super::changes::ChangeHub;
use super::db::Db;
use super::object_store::SharedStore;
use super::rate_limit::RateLimiter;
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
    /// Password attempt limits and the password hashing slots.
    pub auth: crate::accounts::service::AuthGuard,
    /// Seals the secrets the database keeps (webhook signing secrets, feed addresses).
    pub sealer: super::crypto::SecretBox,
    /// Webhook deliveries per client address: blunts floods of forged or replayed posts
    /// before any signature is computed.
    pub webhook_limiter: RateLimiter,
    /// Chat posts waiting for their shared transaction (group commit).
    pub chat_posts: crate::chat::posting::PostQueue,
    /// Recently read cold-storage batches of chat messages.
    pub chat_cache: crate::chat::cold::BatchCache,
    /// The wage records' in-memory copy that answers statistics and listings.
    pub wage_copy: crate::wages::analytics::WageCopy,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl AppState {
    /// The state inside a server function (provided by `leptos_routes_with_context`).
    pub fn from_context() -> Result<Self, crate::error::AppError> {
        leptos::prelude::use_context::<AppState>().ok_or_else(|| {
            tracing::error!("AppState missing from the Leptos context");
            crate::error::AppError::internal()
        })
    }
}
