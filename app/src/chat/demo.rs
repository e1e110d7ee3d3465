//! The chat's demo: on a demo installation (`SB_DEMO_DATA`), the first administrator —
//! the newcomer trying it — finds two messages from the demo account in their inbox, one
//! that waits a week and one that expires within minutes and moves to cold storage, its
//! id still readable.

use super::service;
use crate::accounts::Caller;
use crate::error::{AppError, AppResult};
use crate::platform::state::AppState;

/// Queued by accounts when a demo installation's first administrator signs up.
pub const WELCOME_JOB: &str = "chat.demo_welcome";

/// (text, expires after seconds)
const MESSAGES: &[(&str, i64)] = &[
    (
        "Welcome to Switchboard (demo message). Chat messages wait in the inbox until they expire; \
         reading them shows each once. This one waits a week.",
        7 * 24 * 3600,
    ),
    (
        "This one (demo) expires in two minutes. Then the archiver moves it from the database to \
         cold storage, and its link still opens it.",
        120,
    ),
];

pub fn register(jobs: &mut crate::platform::jobs::JobRegistry) {
    jobs.register(WELCOME_JOB, std::time::Duration::from_secs(120), 3, |state, job| async move {
        #[derive(serde::Deserialize)]
        struct Payload {
            user_id: i64,
        }
        let user = job.parse::<Payload>()?.user_id;
        welcome(&state, user).await.map(drop).map_err(AppError::into_failure)
    });
}

/// Leaves the welcome messages for `user_id`, from the demo account. (A retried job may
/// leave them twice: harmless demo content, and not worth a ledger.)
#[tracing::instrument(skip(state))]
pub async fn welcome(state: &AppState, user_id: i64) -> AppResult<Vec<i64>> {
    let Some(recipient) = crate::accounts::service::profile_by_id(&state.db.conn, user_id).await? else { return Ok(Vec::new()) };
    let Some(demo) = crate::accounts::service::demo_account(&state.db).await? else { return Ok(Vec::new()) };
    let sender = Caller::account(&demo);
    let mut ids = Vec::new();
    for (text, timeout) in MESSAGES {
        ids.push(service::post_message(state, &sender, &recipient.username, text, Some(*timeout)).await?);
    }
    Ok(ids)
}
