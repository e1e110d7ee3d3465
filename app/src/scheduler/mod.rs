//! Scheduler: users' calendars of events, a REST API, week/month calendar pages in the
//! viewer's time zone, and iCal feeds. Every change is published to the broker.

pub mod domain;
mod views;

#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod ical;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
#[cfg(feature = "ssr")]
pub mod zones;

pub use domain::*;
pub use views::{CalendarPage as CalendarScreen, SettingsPage};

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
mod page {
    use super::domain::{CalendarPage, Placed};
    use super::{service, zones};
    use crate::error::AppResult;
    use chrono::{Datelike, NaiveDate};

    /// Builds a week or month page of `owner`'s calendar as `viewer` sees it.
    pub async fn build(
        state: &crate::platform::state::AppState,
        caller: &crate::accounts::Caller,
        owner: Option<String>,
        view: &str,
        date: Option<&str>,
    ) -> AppResult<CalendarPage> {
        let viewer_zone = zones::parse_zone("time_zone", &caller.viewer.time_zone).unwrap_or(chrono_tz::Tz::UTC);
        let owner = match owner.as_deref().filter(|o| !o.is_empty()) {
            Some(name) => service::find_user(&state.db, name).await?,
            None => service::find_user(&state.db, &caller.viewer.username).await?,
        };
        let today = zones::to_local(viewer_zone, crate::platform::time::now_ms()).date_naive();
        let anchor = match date.filter(|d| !d.is_empty()) {
            Some(d) => zones::parse_date("date", d)?,
            None => today,
        };
        let month = view == "month";
        let (first, count, prev, next) = if month {
            let first_of_month = anchor.with_day(1).expect("day 1 exists");
            let next_month = (first_of_month + chrono::Duration::days(32)).with_day(1).expect("day 1 exists");
            let prev_month = (first_of_month - chrono::Duration::days(1)).with_day(1).expect("day 1 exists");
            let start = zones::week_start(first_of_month);
            let end = zones::week_start(next_month - chrono::Duration::days(1)) + chrono::Duration::days(7);
            (start, (end - start).num_days() as usize, prev_month, next_month)
        } else {
            let start = zones::week_start(anchor);
            (start, 7, start - chrono::Duration::days(7), start + chrono::Duration::days(7))
        };
        let days: Vec<NaiveDate> = (0..count).map(|i| first + chrono::Duration::days(i as i64)).collect();
        let from = zones::start_of_day(viewer_zone, first);
        let to = zones::start_of_day(viewer_zone, first + chrono::Duration::days(count as i64));
        let fetched = service::range(&state.db, owner.id, from, to, None, 500).await?;
        let busy_only = !service::sees_details(caller, &owner);
        let conflicts = service::conflicts_within(&fetched.events);
        let day_index = |ms: i64| -> usize {
            let d = zones::to_local(viewer_zone, ms).date_naive();
            ((d - first).num_days().clamp(0, count as i64 - 1)) as usize
        };
        let minute = |ms: i64| -> i32 {
            let t = zones::to_local(viewer_zone, ms);
            (t.hour() * 60 + t.minute()) as i32
        };
        use chrono::Timelike;
        let events = fetched
            .events
            .iter()
            .map(|e| {
                let local = |ms: i64| zones::to_local(viewer_zone, ms).format("%Y-%m-%dT%H:%M").to_string();
                // An event ending at midnight ends on the previous day.
                let last_ms = (e.end_at - 1).max(e.start_at);
                Placed {
                    id: e.id,
                    title: if busy_only { "Busy".into() } else { e.title.clone() },
                    location: if busy_only { String::new() } else { e.location.clone() },
                    description: if busy_only { String::new() } else { e.description.clone() },
                    all_day: e.all_day,
                    busy_only,
                    conflict: !busy_only && conflicts.contains_key(&e.id),
                    version: e.version,
                    local_start: local(e.start_at),
                    local_end: local(e.end_at),
                    first_day: if e.start_at < from { 0 } else { day_index(e.start_at) },
                    last_day: if e.end_at > to { count - 1 } else { day_index(last_ms) },
                    start_minute: if e.start_at < from { 0 } else { minute(e.start_at) },
                    end_minute: if e.end_at >= to { 1440 } else { minute(last_ms) + 1 },
                }
            })
            .collect();
        let title = if month {
            anchor.format("%B %Y").to_string()
        } else {
            format!("{} – {}", first.format("%b %-d"), days[6].format("%b %-d, %Y"))
        };
        Ok(CalendarPage {
            editable: service::may_edit(caller, owner.id),
            owner: service::calendar_user(&owner),
            viewer_zone: viewer_zone.to_string(),
            view: if month { "month".into() } else { "week".into() },
            days: days.iter().map(|d| d.format("%Y-%m-%d").to_string()).collect(),
            prev: prev.format("%Y-%m-%d").to_string(),
            next: next.format("%Y-%m-%d").to_string(),
            today: today.format("%Y-%m-%d").to_string(),
            title,
            events,
        })
    }

    /// `YYYY-MM-DDTHH:MM` in the viewer's zone → an instant; for all-day events the day.
    pub fn local_fields(
        zone: chrono_tz::Tz,
        start_local: &str,
        end_local: &str,
        all_day: bool,
    ) -> AppResult<(i64, i64)> {
        let start = zones::parse_local("start", start_local)?;
        let end = zones::parse_local("end", end_local)?;
        if all_day {
            // The form's end day is inclusive; the stored end is the next midnight.
            let last = end.date().max(start.date());
            return Ok((zones::start_of_day(zone, start.date()), zones::start_of_day(zone, last + chrono::Duration::days(1))));
        }
        Ok((zones::local_to_utc("start", zone, start)?, zones::local_to_utc("end", zone, end)?))
    }
}

#[server(prefix = "/_fn", endpoint = "calendar_page")]
pub async fn load_calendar(user: Option<String>, view: Option<String>, date: Option<String>) -> Result<CalendarPage, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    page::build(&state, &caller, user, view.as_deref().unwrap_or("week"), date.as_deref()).await
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
    let (start_at, end_at) = page::local_fields(zone, &start_local, &end_local, all_day)?;
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
        (None, _) => {
            let owner = if owner.trim().is_empty() { caller.username().to_owned() } else { owner };
            let owner = service::find_user(&state.db, &owner).await?;
            let fields = fill(service::new_fields(&owner))?;
            Ok(service::create(&state.db, &caller, &owner, fields).await?.id)
        }
    }
}

#[server(prefix = "/_fn", endpoint = "calendar_delete")]
pub async fn remove_event(id: i64, version: i32) -> Result<(), AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    service::delete(&state.db, &caller, id, Some(version)).await
}

/// The settings page's data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preferences {
    pub display_name: String,
    pub time_zone: String,
    pub calendar_shared: bool,
    pub feed_url: String,
}

#[server(prefix = "/_fn", endpoint = "settings_load")]
pub async fn load_preferences() -> Result<Preferences, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    let me = service::find_user(&state.db, caller.username()).await?;
    Ok(Preferences {
        display_name: me.display_name,
        time_zone: me.time_zone,
        calendar_shared: me.calendar_shared,
        feed_url: service::feed_url(&state, &caller, false).await?,
    })
}

#[server(prefix = "/_fn", endpoint = "settings_save")]
pub async fn save_preferences(display_name: String, time_zone: String, calendar_shared: Option<String>) -> Result<(), AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    crate::accounts::service::update_profile(&state.db, &caller, Some(&display_name), Some(time_zone.trim()), Some(calendar_shared.is_some()))
        .await?;
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "settings_rotate_feed")]
pub async fn rotate_feed() -> Result<(), AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    service::feed_url(&state, &caller, true).await?;
    Ok(())
}

/// Time zones offered in the settings menu (any IANA name may be typed too).
pub const COMMON_ZONES: &[&str] = &[
    "UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "Europe/Madrid", "Europe/Warsaw", "Europe/Helsinki",
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo",
    "Asia/Kolkata", "Asia/Singapore", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland",
];
