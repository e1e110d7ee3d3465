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
    /// The subscribed calendar it comes from (read-only), if not this calendar's own.
    pub source: Option<String>,
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
