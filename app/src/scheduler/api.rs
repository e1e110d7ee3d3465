//! The calendar and settings pages' server functions. Each parses its input, calls one service function
//! and maps the result; the REST handlers in `http.rs` call the same services.

use super::*;
#[cfg(feature = "ssr")]
use crate::platform::time::zones;

use crate::error::AppError;
use leptos::prelude::*;

#[server(prefix = "/_fn", endpoint = "calendar_page")]
pub async fn load_calendar(user: Option<String>, view: Option<String>, date: Option<String>) -> Result<CalendarLayout, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    super::layout::build(&state, &caller, user, CalendarView::from_query(view.as_deref()), date.as_deref()).await
}

/// Creates (no `id`) or changes (with `id` and `version`) an event from the calendar's
/// form; times are local to the viewer's zone.
#[server(prefix = "/_fn", endpoint = "calendar_save")]
#[allow(clippy::too_many_arguments)]
pub async fn save_event(
    id: Option<i64>,
    version: Option<i32>,
    owner: String,
    title: String,
    start_local: String,
    end_local: String,
    all_day: Option<String>,
    location: Option<String>,
    description: Option<String>,
) -> Result<i64, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    let zone = zones::parse_zone("time_zone", &caller.viewer.time_zone)?;
    let all_day = all_day.is_some();
    let (start_at, end_at) = super::layout::local_fields(zone, &start_local, &end_local, all_day)?;
    let fill = move |mut f: service::Fields| -> Result<service::Fields, AppError> {
        f.title = title.trim().to_owned();
        f.location = location.clone().unwrap_or_default().trim().to_owned();
        f.description = description.clone().unwrap_or_default();
        f.start_at = start_at;
        f.end_at = end_at;
        f.all_day = all_day;
        f.time_zone = zone.to_string();
        Ok(f)
    };
    // A change is judged by the stored event's owner (the service's to decide); `owner`
    // only says whose calendar a *new* event goes on — none: the caller's own.
    match (id, version) {
        (Some(id), Some(version)) => Ok(service::update(&state.db, &caller, id, version, fill).await?.id),
        (Some(_), None) => Err(AppError::invalid("version", "version is required to change an event")),
        // The form's owner field is blank for the viewer's own calendar.
        (None, _) => Ok(service::create_on(&state.db, &caller, Some(owner.trim()).filter(|o| !o.is_empty()), fill).await?.id),
    }
}

#[server(prefix = "/_fn", endpoint = "calendar_delete")]
pub async fn remove_event(id: i64, version: i32) -> Result<(), AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    service::delete(&state.db, &caller, id, Some(version)).await
}

/// The caller's secret iCal feed address (made on first use).
#[server(prefix = "/_fn", endpoint = "settings_feed")]
pub async fn load_feed() -> Result<String, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    service::feed_url(&state, &caller, false).await
}

#[server(prefix = "/_fn", endpoint = "settings_rotate_feed")]
pub async fn rotate_feed() -> Result<(), AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    service::feed_url(&state, &caller, true).await?;
    Ok(())
}

