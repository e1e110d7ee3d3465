//! Scheduler REST routes and the iCal feed.

use super::booking;
use super::domain::{Booked, BookingPageView, BookingSettings, CalendarUser, EventView, ImportReport, SubscriptionView};
use super::service::{self, Input, Target};
use super::feeds;
use super::import;
use super::subscriptions;
use super::ical;
use crate::platform::time::zones;
use crate::accounts::Caller;
use crate::error::{AppError, AppResult, ErrorEnvelope, OrInternal};
use crate::platform::http::{ApiJson, ApiQuery, ClientAddr};
use crate::platform::state::AppState;
use crate::platform::time::now_ms;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// A user's public profile.
#[utoipa::path(get, path = "/users/{username}", tag = "scheduler", security(("bearer" = [])),
    params(("username" = String, Path)),
    responses((status = 200, body = CalendarUser), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn get_user(State(state): State<AppState>, _caller: Caller, Path(username): Path<String>) -> AppResult<Json<CalendarUser>> {
    Ok(Json(service::calendar_user(&service::find_user(&state.db, &username).await?)))
}

#[derive(Deserialize, IntoParams)]
pub struct RangeParams {
    /// Start of the range (ISO-8601 with offset); default now.
    from: Option<String>,
    /// End of the range (exclusive); default 30 days after `from`.
    to: Option<String>,
    /// From `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, default 100, max 500.
    limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct EventPage {
    events: Vec<EventView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// A user's events overlapping a time range, by start: single events and each
/// occurrence of a series (with its `series_id` and `occurrence_start`). Others than the
/// owner see only free/busy unless the owner shares the calendar.
#[utoipa::path(get, path = "/users/{username}/events", tag = "scheduler", security(("bearer" = [])),
    params(("username" = String, Path), RangeParams),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn list_events(State(state): State<AppState>, caller: Caller, Path(username): Path<String>, ApiQuery(q): ApiQuery<RangeParams>) -> AppResult<Json<EventPage>> {
    let owner = service::find_user(&state.db, &username).await?;
    let from = match q.from.as_deref() {
        Some(f) => zones::parse_instant("from", f)?,
        None => now_ms(),
    };
    let to = match q.to.as_deref() {
        Some(t) => zones::parse_instant("to", t)?,
        None => from + 30 * 86_400_000,
    };
    let (events, next_cursor) = service::events_for(&state.db, &caller, &owner, from, to, q.cursor.as_deref(), q.limit.unwrap_or(100)).await?;
    Ok(Json(EventPage { events, next_cursor }))
}

#[derive(Deserialize, ToSchema)]
pub struct EventBody {
    /// 1–200 characters.
    title: Option<String>,
    description: Option<String>,
    location: Option<String>,
    /// ISO-8601 with offset; for all-day events a date (`2026-11-22`).
    start: Option<String>,
    /// ISO-8601 with offset, after `start`; for all-day events the day after the last
    /// (default: one day).
    end: Option<String>,
    all_day: Option<bool>,
    /// IANA zone the event belongs to (default the owner's). A series repeats in it: a
    /// weekly 09:00 stays at 09:00 there across daylight-saving changes.
    time_zone: Option<String>,
    /// Makes it a series: an RFC 5545 rule, e.g. `FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20271231`
    /// (daily, weekly, monthly or yearly; `INTERVAL`, `BYDAY` such as `2TU`, `BYMONTHDAY`,
    /// `BYMONTH`, `BYSETPOS`, `WKST`; `COUNT` ≤ 1000 or `UNTIL`). An empty rule makes a
    /// series a single event again.
    recurrence: Option<String>,
}

impl EventBody {
    fn input(self) -> Input {
        Input {
            title: self.title,
            description: self.description,
            location: self.location,
            start: self.start,
            end: self.end,
            all_day: self.all_day,
            time_zone: self.time_zone,
            recurrence: self.recurrence,
        }
    }
}

/// Create an event on a calendar (the owner's own, or any for an admin).
#[utoipa::path(post, path = "/users/{username}/events", tag = "scheduler", security(("bearer" = [])),
    params(("username" = String, Path)), request_body = EventBody,
    responses(
        (status = 201, description = "created; Location names it", body = EventView),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn create_event(State(state): State<AppState>, caller: Caller, Path(username): Path<String>, ApiJson(body): ApiJson<EventBody>) -> AppResult<Response> {
    let input = body.input();
    let fill = |base| {
        // A new event needs its times (a change may leave them as they are).
        if input.start.is_none() {
            return Err(AppError::invalid("start", "start is required"));
        }
        if input.end.is_none() && input.all_day != Some(true) {
            return Err(AppError::invalid("end", "end is required"));
        }
        service::resolve(base, &input)
    };
    let created = service::create_on(&state.db, &caller, Some(&username), fill).await?;
    let location = HeaderValue::from_str(&format!("/api/v1/events/{}", created.id)).or_internal("building the Location header of a new event")?;
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(created)).into_response())
}

/// One event (free/busy only for others unless the owner shares).
#[utoipa::path(get, path = "/events/{id}", tag = "scheduler", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = EventView), (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn get_event(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<Json<EventView>> {
    Ok(Json(service::event_for(&state.db, &caller, id).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct PatchBody {
    /// The version you read (of the series, for its occurrences): a stale one gets 409.
    version: i32,
    /// For a series: `this` occurrence, it and the `following` ones, or `all` (default,
    /// or `this` when `occurrence` is given).
    scope: Option<String>,
    /// The occurrence's `occurrence_start`, with scope `this` or `following`.
    occurrence: Option<String>,
    #[serde(flatten)]
    change: EventBody,
}

/// Change an event or a series (all of it, one occurrence, or an occurrence and the
/// following ones). `version` must be the current one (optimistic concurrency).
#[utoipa::path(patch, path = "/events/{id}", tag = "scheduler", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = PatchBody,
    responses((status = 200, description = "what was written: the event, the changed occurrence, or the series from the occurrence on", body = EventView),
        (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, description = "stale version", body = ErrorEnvelope)))]
async fn patch_event(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>, ApiJson(body): ApiJson<PatchBody>) -> AppResult<Json<EventView>> {
    let target = Target::parse(body.scope.as_deref(), body.occurrence.as_deref())?;
    let input = body.change.input();
    Ok(Json(service::update(&state.db, &caller, id, body.version, target, |f| service::resolve(f, &input)).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct DeleteParams {
    /// When given, delete only if it is still this version.
    version: Option<i32>,
    /// For a series: `this`, `following` or `all` (as for PATCH).
    scope: Option<String>,
    /// The occurrence's `occurrence_start`, with scope `this` or `following`.
    occurrence: Option<String>,
}

/// Delete an event, a series, one occurrence, or an occurrence and the following ones.
#[utoipa::path(delete, path = "/events/{id}", tag = "scheduler", security(("bearer" = [])), params(("id" = i64, Path), DeleteParams),
    responses((status = 204), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
async fn delete_event(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>, ApiQuery(q): ApiQuery<DeleteParams>) -> AppResult<StatusCode> {
    let target = Target::parse(q.scope.as_deref(), q.occurrence.as_deref())?;
    service::delete(&state, &caller, id, q.version, target).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn ics(body: String, filename: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("inline; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response()
}

/// One event as an .ics file.
#[utoipa::path(get, path = "/events/{id}/ics", tag = "scheduler", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "text/calendar", content_type = "text/calendar", body = String),
        (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn event_ics(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<Response> {
    Ok(ics(service::event_ics(&state.db, &caller, id).await?, &format!("event-{id}.ics")))
}

#[derive(Serialize, ToSchema)]
pub struct FeedUrl {
    /// Secret address of your calendar in iCal format; anyone with it can read it.
    url: String,
}

/// Your secret iCal feed address (created on first call).
#[utoipa::path(get, path = "/me/ical", tag = "scheduler", security(("bearer" = [])),
    responses((status = 200, body = FeedUrl), (status = 401, body = ErrorEnvelope)))]
async fn my_feed(State(state): State<AppState>, caller: Caller) -> AppResult<Json<FeedUrl>> {
    Ok(Json(FeedUrl { url: feeds::feed_url(&state, &caller, false).await? }))
}

/// Replace your feed address; the old one stops working at once.
#[utoipa::path(post, path = "/me/ical/rotate", tag = "scheduler", security(("bearer" = [])),
    responses((status = 200, body = FeedUrl), (status = 401, body = ErrorEnvelope)))]
async fn rotate_feed(State(state): State<AppState>, caller: Caller) -> AppResult<Json<FeedUrl>> {
    Ok(Json(FeedUrl { url: feeds::feed_url(&state, &caller, true).await? }))
}

/// A user's calendar in iCal format, by its secret address (`/ical/<token>.ics`).
#[utoipa::path(get, path = "/ical/{file}", tag = "scheduler", params(("file" = String, Path, description = "<token>.ics")),
    responses((status = 200, description = "text/calendar", content_type = "text/calendar", body = String), (status = 404, body = ErrorEnvelope)))]
async fn ical_feed(State(state): State<AppState>, Path(file): Path<String>, _headers: HeaderMap) -> AppResult<Response> {
    let token = file.strip_suffix(".ics").ok_or_else(|| AppError::not_found("calendar"))?;
    let (owner, events) = feeds::feed(&state.db, token).await?;
    Ok(ics(ical::calendar(&owner.display_name, &owner.time_zone, &events), &format!("{}.ics", owner.username)))
}

#[derive(Deserialize, IntoParams)]
pub struct CalendarStreamParams {
    /// Whose calendar (default your own).
    user: Option<String>,
}

/// Changes to a calendar (Server-Sent Events; resumable with Last-Event-ID): which event
/// changed, so a page can reload what its viewer may see.
#[utoipa::path(get, path = "/calendar/events", tag = "scheduler", security(("bearer" = [])), params(CalendarStreamParams),
    responses((status = 200, description = "text/event-stream of calendar changes", content_type = "text/event-stream", body = crate::platform::changes::ChangeEvent),
        (status = 401, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn calendar_events(State(state): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<CalendarStreamParams>, headers: HeaderMap) -> AppResult<Response> {
    let channel = service::calendar_events_channel(&state.db, &caller, q.user.as_deref()).await?;
    let last = crate::platform::changes::last_event_id(&headers);
    Ok(crate::platform::changes::sse(state.db.clone(), state.changes.clone(), channel, last).into_response())
}

/// Your booking page: weekly hours, slot length, buffers, notice and horizon (defaults
/// until you save it; off until you enable it).
#[utoipa::path(get, path = "/me/booking-page", tag = "scheduler", security(("bearer" = [])),
    responses((status = 200, body = BookingSettings), (status = 401, body = ErrorEnvelope)))]
async fn my_booking_page(State(state): State<AppState>, caller: Caller) -> AppResult<Json<BookingSettings>> {
    Ok(Json(booking::settings(&state, &caller).await?))
}

/// Set up your booking page.
#[utoipa::path(put, path = "/me/booking-page", tag = "scheduler", security(("bearer" = [])), request_body = BookingSettings,
    responses((status = 200, body = BookingSettings), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope)))]
async fn set_booking_page(State(state): State<AppState>, caller: Caller, ApiJson(body): ApiJson<BookingSettings>) -> AppResult<Json<BookingSettings>> {
    Ok(Json(booking::save_settings(&state, &caller, &body).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct SlotParams {
    /// First day of the week shown (a date in `time_zone`); default today.
    from: Option<String>,
    /// The visitor's IANA zone the slots are shown in; default the owner's.
    time_zone: Option<String>,
}

/// A user's booking page: the free slots of a week. Public.
#[utoipa::path(get, path = "/booking/{username}", tag = "scheduler", params(("username" = String, Path), SlotParams),
    responses((status = 200, body = BookingPageView), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn booking_slots(State(state): State<AppState>, Path(username): Path<String>, ApiQuery(q): ApiQuery<SlotParams>) -> AppResult<Json<BookingPageView>> {
    Ok(Json(booking::page(&state.db, &username, q.time_zone.as_deref(), q.from.as_deref()).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct BookingRequest {
    /// The slot's `start` as the page lists it.
    start: String,
    /// 1–100 characters.
    name: String,
    email: String,
    /// The visitor's IANA zone (for the confirmation and the owner); default the owner's.
    time_zone: Option<String>,
}

/// Book a slot on a user's booking page. Public and limited per client address; a slot
/// taken meanwhile is a 409.
#[utoipa::path(post, path = "/booking/{username}", tag = "scheduler", params(("username" = String, Path)), request_body = BookingRequest,
    responses((status = 201, body = Booked), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "the slot was taken meanwhile", body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)))]
async fn book_slot(State(state): State<AppState>, ClientAddr(client): ClientAddr, Path(username): Path<String>, ApiJson(req): ApiJson<BookingRequest>) -> AppResult<(StatusCode, Json<Booked>)> {
    let booked = booking::book(&state, client, &username, &req.start, &req.name, &req.email, req.time_zone.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(booked)))
}

/// Cancel a booking with the secret from its cancel link. Public (the secret is the
/// credential); cancelling twice is fine.
#[utoipa::path(delete, path = "/bookings/{token}", tag = "scheduler", params(("token" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorEnvelope), (status = 429, body = ErrorEnvelope)))]
async fn cancel_booking(State(state): State<AppState>, ClientAddr(client): ClientAddr, Path(token): Path<String>) -> AppResult<StatusCode> {
    booking::cancel(&state, client, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Your subscribed calendars: other calendars shown read-only beside your own.
#[utoipa::path(get, path = "/me/calendar-subscriptions", tag = "scheduler", security(("bearer" = [])),
    responses((status = 200, body = Vec<SubscriptionView>), (status = 401, body = ErrorEnvelope)))]
async fn list_subscriptions(State(state): State<AppState>, caller: Caller) -> AppResult<Json<Vec<SubscriptionView>>> {
    Ok(Json(subscriptions::list(&state, &caller).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct SubscriptionRequest {
    /// 1–100 characters.
    name: String,
    /// The calendar's iCalendar address (`https://`, `http://` or `webcal://`); only
    /// public addresses, unless `BROKER_ALLOWED_TARGETS` allows one to an admin.
    url: String,
}

/// Subscribe to a calendar by its iCalendar address. It is fetched at once (the answer
/// says whether it could be read) and then every `SB_CALENDAR_REFRESH_MINUTES`.
#[utoipa::path(post, path = "/me/calendar-subscriptions", tag = "scheduler", security(("bearer" = [])), request_body = SubscriptionRequest,
    responses((status = 201, body = SubscriptionView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 429, description = "over SB_CALENDAR_FILES_PER_HOUR", body = ErrorEnvelope)))]
async fn add_subscription(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<SubscriptionRequest>) -> AppResult<(StatusCode, Json<SubscriptionView>)> {
    Ok((StatusCode::CREATED, Json(subscriptions::add_url(&state, &caller, &req.name, &req.url).await?)))
}

#[derive(Deserialize, IntoParams)]
pub struct UploadParams {
    /// What to call the calendar (1–100 characters).
    name: String,
}

/// The body of an `.ics` upload as text.
fn ics_text(body: axum::body::Bytes) -> AppResult<String> {
    String::from_utf8(body.to_vec()).map_err(|e| AppError::invalid("file", format!("the file is not UTF-8 text (byte {})", e.utf8_error().valid_up_to())))
}

/// Show an `.ics` file (the request body, `text/calendar`) as a subscribed calendar; it
/// is read once, not fetched again.
#[utoipa::path(post, path = "/me/calendar-subscriptions/upload", tag = "scheduler", security(("bearer" = [])), params(UploadParams),
    request_body(content = String, content_type = "text/calendar"),
    responses((status = 201, body = SubscriptionView), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 429, description = "over SB_CALENDAR_FILES_PER_HOUR", body = ErrorEnvelope)))]
async fn upload_subscription(State(state): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<UploadParams>, body: axum::body::Bytes) -> AppResult<(StatusCode, Json<SubscriptionView>)> {
    let view = subscriptions::add_upload(&state, &caller, &q.name, ics_text(body)?).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Stop showing a subscribed calendar.
#[utoipa::path(delete, path = "/me/calendar-subscriptions/{id}", tag = "scheduler", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn remove_subscription(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<StatusCode> {
    subscriptions::remove(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Fetch a subscribed calendar now (at most every 30 s).
#[utoipa::path(post, path = "/me/calendar-subscriptions/{id}/refresh", tag = "scheduler", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = SubscriptionView), (status = 401, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
async fn refresh_subscription(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> AppResult<Json<SubscriptionView>> {
    Ok(Json(subscriptions::refresh(&state, &caller, id).await?))
}

/// Import an `.ics` file (the request body, `text/calendar`) into your own calendar.
/// Importing the same file again adds nothing twice.
#[utoipa::path(post, path = "/me/calendar-import", tag = "scheduler", security(("bearer" = [])),
    request_body(content = String, content_type = "text/calendar"),
    responses((status = 200, body = ImportReport), (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
        (status = 429, description = "over SB_CALENDAR_FILES_PER_HOUR", body = ErrorEnvelope)))]
async fn import_calendar(State(state): State<AppState>, caller: Caller, body: axum::body::Bytes) -> AppResult<Json<ImportReport>> {
    Ok(Json(import::import(&state, &caller, ics_text(body)?).await?))
}

pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_subscriptions, add_subscription))
        .routes(routes!(upload_subscription))
        .routes(routes!(remove_subscription))
        .routes(routes!(refresh_subscription))
        .routes(routes!(import_calendar))
        .routes(routes!(my_booking_page, set_booking_page))
        .routes(routes!(booking_slots, book_slot))
        .routes(routes!(cancel_booking))
        .routes(routes!(calendar_events))
        .routes(routes!(get_user))
        .routes(routes!(list_events, create_event))
        .routes(routes!(get_event, patch_event, delete_event))
        .routes(routes!(event_ics))
        .routes(routes!(my_feed))
        .routes(routes!(rotate_feed))
}

/// Mounted at the root: feed addresses calendar apps subscribe to.
pub fn feed_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ical_feed))
}
