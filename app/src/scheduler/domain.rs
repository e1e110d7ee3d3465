//! Scheduler vocabulary shared with the browser.

use serde::{Deserialize, Serialize};

pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 5000;
pub const LOCATION_MAX: usize = 500;
/// Longest event accepted. The bound lets "events overlapping a range" be answered from
/// the `(owner, start)` index: an overlapping event starts at most this long before it.
pub const MAX_EVENT_DAYS: i64 = 62;

/// An event as the API and pages show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EventView {
    pub id: i64,
    /// Stable iCalendar UID.
    pub uid: String,
    /// The owner's username.
    pub owner: String,
    /// "Busy" when the viewer may see only free/busy.
    pub title: String,
    pub description: String,
    pub location: String,
    /// ISO-8601 UTC.
    pub start: String,
    pub end: String,
    pub all_day: bool,
    /// The IANA zone the event was entered in (all-day events are days in this zone).
    pub time_zone: String,
    /// Optimistic concurrency: send it back with PATCH.
    pub version: i32,
    /// True when the owner's calendar is not shared with the viewer: only the time shows.
    pub busy_only: bool,
    /// Other events of the same owner that overlap this one.
    pub conflicts: Vec<i64>,
    pub created_at: String,
    pub updated_at: String,
    /// The series' rule (RFC 5545 `RRULE`, e.g. `FREQ=WEEKLY;BYDAY=MO,WE`) on a series
    /// and its occurrences.
    pub recurrence: Option<String>,
    /// The series this is, or is an occurrence of.
    pub series_id: Option<i64>,
    /// On an occurrence: the start it has in its series (iCalendar's RECURRENCE-ID). Send
    /// it back as `occurrence` to change or delete this occurrence, or it and the
    /// following ones.
    pub occurrence_start: Option<String>,
}

crate::named_enum! {
    /// Which part of a series a change or deletion is for.
    pub enum EditScope {
        /// This occurrence only.
        This = "this",
        /// This occurrence and every one after it.
        Following = "following",
        /// The whole series (for a single event: the event).
        All = "all",
    }
}

/// A user as the scheduler shows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CalendarUser {
    pub username: String,
    pub display_name: String,
    pub time_zone: String,
    /// Whether others see this user's events in full.
    pub calendar_shared: bool,
}

/// One event placed on the calendar grid, in the viewer's zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Placed {
    pub id: i64,
    pub title: String,
    pub location: String,
    pub description: String,
    pub all_day: bool,
    pub busy_only: bool,
    pub conflict: bool,
    pub version: i32,
    /// `YYYY-MM-DDTHH:MM` in the viewer's zone (what the edit form shows).
    pub local_start: String,
    pub local_end: String,
    /// Index of the first and last day it covers within the grid.
    pub first_day: usize,
    pub last_day: usize,
    /// Minutes after midnight on its first / last day (for the week grid).
    pub start_minute: i32,
    pub end_minute: i32,
    /// Part of a series: the series, its rule and its version (what a change of the
    /// following occurrences or of all of them is checked against).
    pub series: Option<SeriesRef>,
    /// From a subscribed calendar (its name): shown, never edited here.
    pub calendar: Option<String>,
}

/// The series an occurrence on the calendar page belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesRef {
    pub id: i64,
    pub version: i32,
    /// `FREQ=WEEKLY;BYDAY=MO`.
    pub rule: String,
    /// The start this occurrence has in the series, ISO-8601 UTC.
    pub occurrence: String,
    /// Changed on its own (a row of its own, with `Placed::id` and `Placed::version`).
    pub changed: bool,
}

crate::named_enum! {
    /// How many days a calendar page shows.
    pub enum CalendarView {
        Week = "week",
        /// The weeks that cover a month.
        Month = "month",
    }
}

impl CalendarView {
    /// The view a page address asks for; anything else is the week.
    pub fn from_query(text: Option<&str>) -> Self {
        text.and_then(Self::parse).unwrap_or(CalendarView::Week)
    }
}

/// A calendar page: days in the viewer's zone and the events on them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalendarLayout {
    pub owner: CalendarUser,
    pub viewer_zone: String,
    /// The viewer's own calendar.
    pub mine: bool,
    pub editable: bool,
    pub view: CalendarView,
    /// The grid's days, `YYYY-MM-DD`, in the viewer's zone.
    pub days: Vec<String>,
    /// The anchor of the previous/next page and of today.
    pub prev: String,
    pub next: String,
    pub today: String,
    pub title: String,
    pub events: Vec<Placed>,
}

crate::named_enum! {
    /// Where a booking made on a booking page stands.
    pub enum BookingStatus {
        Booked = "booked",
        Canceled = "canceled",
    }
}

/// A user's booking page as its owner sets it up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BookingSettings {
    pub enabled: bool,
    /// What a booking is called (`30 minute meeting`).
    pub title: String,
    /// Hours open for booking per weekday (`MO` … `SU`), in `time_zone`:
    /// `09:00-12:00, 13:00-17:00`; none or empty for a day with none.
    pub hours: std::collections::BTreeMap<String, String>,
    /// The owner's zone: the weekly hours are read in it.
    pub time_zone: String,
    pub slot_minutes: u32,
    /// Kept free before and after every booking.
    pub buffer_before_minutes: u32,
    pub buffer_after_minutes: u32,
    /// How long before a slot it may still be booked.
    pub min_notice_minutes: u32,
    /// How far ahead slots are offered.
    pub horizon_days: u32,
    /// The public page (set by the server; ignored when sent).
    #[serde(default)]
    pub url: String,
}

/// A bookable slot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Slot {
    /// ISO-8601 UTC.
    pub start: String,
    pub end: String,
    /// `09:30`, in the visitor's zone.
    pub label: String,
}

/// One day of a booking page, in the visitor's zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SlotDay {
    /// `2026-12-07`.
    pub date: String,
    /// `Mon 7 Dec`.
    pub label: String,
    pub slots: Vec<Slot>,
}

/// A booking page as a visitor sees it: whose, and the free slots of a week.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BookingPageView {
    pub username: String,
    pub owner_name: String,
    pub title: String,
    pub slot_minutes: u32,
    /// The zone the slots are shown in (the visitor's).
    pub time_zone: String,
    pub days: Vec<SlotDay>,
    /// First days of the previous and next weeks offered, if any.
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// What a visitor gets for a booking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Booked {
    pub id: i64,
    pub title: String,
    pub start: String,
    pub end: String,
    /// In the visitor's zone, for the confirmation: `Mon 7 Dec 2026, 09:30–10:00 (Europe/Paris)`.
    pub when: String,
    /// The secret address that cancels it.
    pub cancel_url: String,
}

crate::named_enum! {
    /// Where a subscribed calendar's events come from.
    pub enum SubscriptionKind {
        /// An iCalendar address, fetched again by a background job.
        Url = "url",
        /// An uploaded `.ics` file, shown as it was.
        Upload = "upload",
    }
}

/// A subscribed calendar as its owner sees it on the settings page and in the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SubscriptionView {
    pub id: i64,
    pub name: String,
    pub kind: SubscriptionKind,
    /// The feed's host (the address itself is kept sealed: it is often a secret), or
    /// `uploaded file`.
    pub source: String,
    /// Events (occurrences) shown from it.
    pub event_count: i32,
    /// When it was last read, ISO-8601 UTC.
    pub fetched_at: Option<String>,
    /// Why the last refresh failed (the events from before it are still shown).
    pub last_error: Option<String>,
    /// What in the feed could not be shown (events left out, rules not expanded).
    pub warnings: Option<String>,
    /// When the next refresh is due, ISO-8601 UTC (none for an upload).
    pub next_refresh: Option<String>,
}

/// What an import into one's own calendar did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportReport {
    /// Events (a series counts once) added.
    pub created: u32,
    /// Events this calendar already has from an earlier import of the same file.
    pub already_imported: u32,
    /// Events left out, each with why.
    pub warnings: Option<String>,
}
