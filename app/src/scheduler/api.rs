//! The calendar and settings pages' server functions. Each parses its input, calls one service function
//! and maps the result; the REST handlers in `http.rs` call the same services.

use super::*;

use crate::error::AppError;
use leptos::prelude::*;

#[server(prefix = "/_fn", endpoint = "calendar_page")]
pub async fn load_calendar(user: Option<String>, view: Option<String>, date: Option<String>) -> Result<CalendarLayout, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    super::layout::build(&state, &caller, user, CalendarView::from_query(view.as_deref()), date.as_deref()).await
}

/// What a save from the calendar is: a new event on a calendar, or a change of an event
/// or of part of a series.
#[cfg(feature = "ssr")]
enum Save {
    New { owner: Option<String> },
    Change { id: i64, version: i32, target: service::Target },
}

#[cfg(feature = "ssr")]
impl Save {
    fn parse(id: Option<i64>, version: Option<i32>, owner: &str, scope: Option<&str>, occurrence: Option<&str>) -> Result<Save, AppError> {
        match (id, version) {
            (Some(id), Some(version)) => Ok(Save::Change { id, version, target: service::Target::parse(scope, occurrence)? }),
            (Some(_), None) => Err(AppError::invalid("version", "version is required to change an event")),
            // The form's owner field is blank for the viewer's own calendar.
            (None, _) => Ok(Save::New { owner: Some(owner.trim().to_owned()).filter(|o| !o.is_empty()) }),
        }
    }

    /// Creates or changes, with `fill` setting the form's fields. A change is judged by
    /// the stored event's owner (the service's to decide); `owner` only says whose
    /// calendar a *new* event goes on.
    async fn run(self, db: &crate::platform::db::Db, caller: &crate::accounts::Caller, fill: impl Fn(service::Fields) -> Result<service::Fields, AppError> + Sync) -> Result<EventView, AppError> {
        match self {
            Save::New { owner } => service::create_on(db, caller, owner.as_deref(), fill).await,
            Save::Change { id, version, target } => service::update(db, caller, id, version, target, fill).await,
        }
    }
}

/// Creates (no `id`) or changes (with `id` and `version`; for a series with `scope` and
/// `occurrence`) an event from the calendar's form; times are local to the viewer's zone.
/// `recurrence` is the rule the form's repeat controls make; `rule_read` the one it was
/// opened with, so an unchanged rule leaves the series' own (with what is left of its
/// `COUNT` for "this and following").
#[server(prefix = "/_fn", endpoint = "calendar_save")]
#[allow(clippy::too_many_arguments)]
pub async fn save_event(
    id: Option<i64>,
    version: Option<i32>,
    scope: Option<String>,
    occurrence: Option<String>,
    owner: String,
    title: String,
    start_local: String,
    end_local: String,
    all_day: Option<String>,
    location: Option<String>,
    description: Option<String>,
    recurrence: Option<String>,
    rule_read: Option<String>,
) -> Result<i64, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    let zone = caller.zone();
    let all_day = all_day.is_some();
    let (start_at, end_at) = super::layout::local_fields(zone, &start_local, &end_local, all_day)?;
    let save = Save::parse(id, version, &owner, scope.as_deref(), occurrence.as_deref())?;
    // A new event belongs to the viewer's zone; a change keeps the event's (the form's
    // times are read in the viewer's zone either way), or its series would repeat
    // somewhere else. All-day days are the viewer's days, as the form shows them.
    let new = matches!(save, Save::New { .. }) || all_day;
    let rule = recurrence.unwrap_or_default().trim().to_owned();
    let rule_changed = rule != rule_read.unwrap_or_default().trim();
    let fill = move |mut f: service::Fields| -> Result<service::Fields, AppError> {
        f.title = title.trim().to_owned();
        f.location = location.clone().unwrap_or_default().trim().to_owned();
        f.description = description.clone().unwrap_or_default();
        f.start_at = start_at;
        f.end_at = end_at;
        f.all_day = all_day;
        if new {
            f.time_zone = zone.to_string();
        }
        if rule_changed {
            f.recurrence = Some(rule.clone()).filter(|r| !r.is_empty());
        }
        Ok(f)
    };
    Ok(save.run(&state.db, &caller, fill).await?.id)
}

/// Moves or resizes an event (or part of a series) by drag and drop or the keyboard: new
/// local start and end, everything else as it is.
#[server(prefix = "/_fn", endpoint = "calendar_move")]
pub async fn move_event(id: i64, version: i32, scope: Option<String>, occurrence: Option<String>, start_local: String, end_local: String) -> Result<i64, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    let zone = caller.zone();
    let target = service::Target::parse(scope.as_deref(), occurrence.as_deref())?;
    let moved = move |mut f: service::Fields| -> Result<service::Fields, AppError> {
        (f.start_at, f.end_at) = super::layout::local_fields(zone, &start_local, &end_local, f.all_day)?;
        Ok(f)
    };
    Ok(service::update(&state.db, &caller, id, version, target, moved).await?.id)
}

#[server(prefix = "/_fn", endpoint = "calendar_delete")]
pub async fn remove_event(id: i64, version: i32, scope: Option<String>, occurrence: Option<String>) -> Result<(), AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    let target = service::Target::parse(scope.as_deref(), occurrence.as_deref())?;
    service::delete(&state, &caller, id, Some(version), target).await
}

/// The caller's secret iCal feed address (made on first use).
#[server(prefix = "/_fn", endpoint = "settings_feed")]
pub async fn load_feed() -> Result<String, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    feeds::feed_url(&state, &caller, false).await
}

#[server(prefix = "/_fn", endpoint = "settings_rotate_feed")]
pub async fn rotate_feed() -> Result<(), AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    feeds::feed_url(&state, &caller, true).await?;
    Ok(())
}

/// A booking page as a visitor sees it (anyone may).
#[server(prefix = "/_fn", endpoint = "booking_page")]
pub async fn load_booking_page(username: String, time_zone: Option<String>, from: Option<String>) -> Result<BookingPageView, AppError> {
    let state = crate::platform::state::AppState::from_context()?;
    booking::page(&state.db, &username, time_zone.as_deref(), from.as_deref()).await
}

/// Books a slot from the booking page (anyone may, a few times a minute per address).
#[server(prefix = "/_fn", endpoint = "booking_book")]
pub async fn book_slot(username: String, start: String, name: String, email: String, time_zone: Option<String>) -> Result<Booked, AppError> {
    let state = crate::platform::state::AppState::from_context()?;
    booking::book(&state, crate::accounts::client()?, &username, &start, &name, &email, time_zone.as_deref()).await
}

/// Cancels a booking from its secret link.
#[server(prefix = "/_fn", endpoint = "booking_cancel")]
pub async fn cancel_booking(token: String) -> Result<(), AppError> {
    let state = crate::platform::state::AppState::from_context()?;
    booking::cancel(&state, crate::accounts::client()?, &token).await
}

/// The caller's booking page settings.
#[server(prefix = "/_fn", endpoint = "settings_booking")]
pub async fn load_booking_settings() -> Result<BookingSettings, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    booking::settings(&state, &caller).await
}

/// A whole number from a form field, or a 400 naming the field (a number argument would
/// be refused by the server function's decoder, with a message naming nothing).
#[cfg(feature = "ssr")]
fn whole_number(field: &str, raw: &str) -> Result<u32, AppError> {
    raw.trim().parse().map_err(|_| AppError::invalid(field, format!("{field} must be a whole number of 0 or more")))
}

/// Saves the caller's booking page from the settings form (weekly hours per weekday).
#[server(prefix = "/_fn", endpoint = "settings_save_booking")]
#[allow(clippy::too_many_arguments)]
pub async fn save_booking_settings(
    enabled: Option<String>,
    title: String,
    hours_mo: Option<String>,
    hours_tu: Option<String>,
    hours_we: Option<String>,
    hours_th: Option<String>,
    hours_fr: Option<String>,
    hours_sa: Option<String>,
    hours_su: Option<String>,
    slot_minutes: String,
    buffer_before_minutes: String,
    buffer_after_minutes: String,
    min_notice_minutes: String,
    horizon_days: String,
) -> Result<BookingSettings, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    let days = [("MO", hours_mo), ("TU", hours_tu), ("WE", hours_we), ("TH", hours_th), ("FR", hours_fr), ("SA", hours_sa), ("SU", hours_su)];
    let settings = BookingSettings {
        enabled: enabled.is_some(),
        title,
        hours: days.into_iter().map(|(d, h)| (d.to_owned(), h.unwrap_or_default())).collect(),
        time_zone: caller.zone().to_string(),
        slot_minutes: whole_number("slot_minutes", &slot_minutes)?,
        buffer_before_minutes: whole_number("buffer_before_minutes", &buffer_before_minutes)?,
        buffer_after_minutes: whole_number("buffer_after_minutes", &buffer_after_minutes)?,
        min_notice_minutes: whole_number("min_notice_minutes", &min_notice_minutes)?,
        horizon_days: whole_number("horizon_days", &horizon_days)?,
        url: String::new(),
    };
    booking::save_settings(&state, &caller, &settings).await
}

#[server(prefix = "/_fn", endpoint = "settings_subscriptions")]
pub async fn load_subscriptions() -> Result<Vec<SubscriptionView>, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    subscriptions::list(&state, &caller).await
}

#[server(prefix = "/_fn", endpoint = "settings_subscribe")]
pub async fn subscribe_calendar(name: String, url: String) -> Result<SubscriptionView, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    subscriptions::add_url(&state, &caller, &name, &url).await
}

#[server(prefix = "/_fn", endpoint = "settings_unsubscribe")]
pub async fn unsubscribe_calendar(id: i64) -> Result<(), AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    subscriptions::remove(&state, &caller, id).await
}

#[server(prefix = "/_fn", endpoint = "settings_refresh_subscription")]
pub async fn refresh_calendar(id: i64) -> Result<SubscriptionView, AppError> {
    let caller = crate::accounts::require_caller().await?;
    let state = crate::platform::state::AppState::from_context()?;
    subscriptions::refresh(&state, &caller, id).await
}
