//! The calendar's demo on the embedded run (`SB_DEMO_DATA`): a shared calendar of the
//! account `demo`, which no one can sign in to, with a few events around today — one of
//! them a series every weekday — each titled "(demo)". Any signed-in member sees it at `/calendar?user=demo`.

use super::service::{self, Fields};
use crate::accounts::Caller;
use crate::error::{AppError, AppResult};
use crate::platform::state::AppState;
use crate::platform::time::now_ms;

/// The job that seeds the demo.
pub const SEED_JOB: &str = "scheduler.seed_demo";

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// (day from today, start hour UTC, hours, title, location, rule)
const EVENTS: &[(i64, i64, i64, &str, &str, Option<&str>)] = &[
    (-1, 15, 1, "Sprint review (demo)", "Room 2", None),
    (-14, 9, 1, "Team stand-up (demo)", "Video call", Some("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR")),
    (0, 13, 2, "Customer workshop (demo)", "Office, 3rd floor", None),
    (1, 10, 1, "Interview: backend engineer (demo)", "Room 1", None),
    (3, 14, 1, "Budget planning (demo)", "Room 2", None),
];

pub fn register(jobs: &mut crate::platform::jobs::JobRegistry) {
    jobs.register(SEED_JOB, std::time::Duration::from_secs(300), 3, |state, _| async move {
        seed(&state).await.map_err(AppError::into_failure)
    });
}

/// Seeds the demo calendar unless it has events already. The events go through the
/// same service as the calendar page's, so they are published to the broker too.
#[tracing::instrument(skip(state))]
pub async fn seed(state: &AppState) -> AppResult<()> {
    let Some(owner) = crate::accounts::service::demo_account(&state.db).await? else {
        tracing::warn!(account = crate::accounts::service::DEMO_ACCOUNT, "someone registered the demo account's name: no demo calendar");
        return Ok(());
    };
    let operator = Caller::operator();
    let (existing, _) = service::events_for(&state.db, &operator, &owner, i64::MIN / 2, i64::MAX / 2, None, 1).await?;
    if !existing.is_empty() {
        return Ok(());
    }
    let today = now_ms().div_euclid(DAY_MS) * DAY_MS;
    for (day, hour, hours, title, location, rule) in EVENTS {
        let start_at = today + day * DAY_MS + hour * HOUR_MS;
        let fields = Fields {
            title: (*title).into(),
            description: "Sample data: this calendar shows what the scheduler does.".into(),
            location: (*location).into(),
            start_at,
            end_at: start_at + hours * HOUR_MS,
            all_day: false,
            time_zone: "UTC".into(),
            recurrence: rule.map(str::to_owned),
        };
        service::create(&state.db, &operator, &owner, fields).await?;
    }
    tracing::info!(events = EVENTS.len(), "demo calendar seeded");
    Ok(())
}
