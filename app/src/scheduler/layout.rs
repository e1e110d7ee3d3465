//! Lays a week or month of a calendar out for the page: which day column and which
//! minutes each event covers in the viewer's zone, free/busy for calendars not shared.

use super::domain::{CalendarLayout, CalendarView, Placed, SeriesRef};
use super::occurrences;
use super::service;
use crate::platform::time::zones;
use crate::error::AppResult;
use chrono::{Datelike, NaiveDate};

/// Builds a week or month page of `owner`'s calendar as `viewer` sees it.
pub async fn build(
    state: &crate::platform::state::AppState,
    caller: &crate::accounts::Caller,
    owner: Option<String>,
    view: CalendarView,
    date: Option<&str>,
) -> AppResult<CalendarLayout> {
    let viewer_zone = caller.zone();
    let owner = match owner.as_deref().filter(|o| !o.is_empty()) {
        Some(name) => service::find_user(&state.db, name).await?,
        None => service::find_user(&state.db, &caller.viewer.username).await?,
    };
    let today = zones::to_local(viewer_zone, crate::platform::time::now_ms()).date_naive();
    let anchor = match date.filter(|d| !d.is_empty()) {
        Some(d) => zones::parse_date("date", d)?,
        None => today,
    };
    let month = view == CalendarView::Month;
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
    let (items, _) = occurrences::window(&state.db.conn, owner.id, from, to, None, occurrences::MAX_PAGE).await?;
    let busy_only = !service::sees_details(caller, &owner);
    let conflicts = occurrences::conflicts_within(&items);
    let day_index = |ms: i64| -> usize {
        let d = zones::to_local(viewer_zone, ms).date_naive();
        ((d - first).num_days().clamp(0, count as i64 - 1)) as usize
    };
    let minute = |ms: i64| -> i32 {
        let t = zones::to_local(viewer_zone, ms);
        (t.hour() * 60 + t.minute()) as i32
    };
    use chrono::Timelike;
    // Where an event from `start` to `end` sits on the grid; the rest is filled in.
    let at = |start: i64, end: i64, all_day: bool| {
        let local = |ms: i64| zones::to_local(viewer_zone, ms).format("%Y-%m-%dT%H:%M").to_string();
        // An event ending at midnight ends on the previous day.
        let last_ms = (end - 1).max(start);
        Placed {
            id: 0,
            title: String::new(),
            location: String::new(),
            description: String::new(),
            all_day,
            busy_only: false,
            conflict: false,
            version: 0,
            local_start: local(start),
            local_end: local(end),
            first_day: if start < from { 0 } else { day_index(start) },
            last_day: if end > to { count - 1 } else { day_index(last_ms) },
            start_minute: if start < from { 0 } else { minute(start) },
            end_minute: if end >= to { 1440 } else { minute(last_ms) + 1 },
            series: None,
            calendar: None,
        }
    };
    let mut events: Vec<Placed> = items
        .iter()
        .map(|item| {
            let e = &item.row;
            Placed {
                id: e.id,
                title: if busy_only { "Busy".into() } else { e.title.clone() },
                location: if busy_only { String::new() } else { e.location.clone() },
                description: if busy_only { String::new() } else { e.description.clone() },
                busy_only,
                conflict: !busy_only && conflicts.contains_key(&item.key()),
                version: e.version,
                series: series_ref(item, busy_only),
                ..at(item.start, item.end, e.all_day)
            }
        })
        .collect();
    // The owner's subscribed calendars, to the owner only: a feed address is often
    // private, and what it shows is someone else's calendar.
    if caller.id() == owner.id {
        for (e, name) in super::subscriptions::shown_between(&state.db.conn, owner.id, from, to, occurrences::MAX_PAGE).await? {
            events.push(Placed { id: e.id, title: e.title, location: e.location, calendar: Some(name), ..at(e.start_at, e.end_at, e.all_day) });
        }
    }
    let title = if month {
        anchor.format("%B %Y").to_string()
    } else {
        format!("{} – {}", first.format("%b %-d"), days[6].format("%b %-d, %Y"))
    };
    Ok(CalendarLayout {
        mine: caller.id() == owner.id,
        editable: service::may_edit(caller, owner.id),
        owner: service::calendar_user(&owner),
        viewer_zone: viewer_zone.to_string(),
        view,
        days: days.iter().map(|d| d.format("%Y-%m-%d").to_string()).collect(),
        prev: prev.format("%Y-%m-%d").to_string(),
        next: next.format("%Y-%m-%d").to_string(),
        today: today.format("%Y-%m-%d").to_string(),
        title,
        events,
    })
}

/// The series an item belongs to, as the page needs it to offer "this", "following" and
/// "all" (an occurrence changed on its own is changed alone).
fn series_ref(item: &occurrences::Item, busy_only: bool) -> Option<SeriesRef> {
    let (id, occurrence) = (item.series_id()?, item.occurrence?);
    Some(SeriesRef {
        id,
        version: item.row.version,
        rule: match (&item.row.rrule, busy_only) {
            (Some(rule), false) => super::recurrence::with_local_until(rule, occurrences::anchor(&item.row).zone),
            _ => String::new(),
        },
        occurrence: crate::platform::time::to_rfc3339(occurrence),
        changed: !item.row.recurring,
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
