//! A calendar's events in a time range, series expanded: what the range API, the
//! calendar page, the overlap checks, booking pages and the iCal feed read. Single
//! events (and occurrences changed on their own) come from the `(owner_id, start_at)`
//! index; series from the `(owner_id, recurring, series_end)` index — only the series of
//! this calendar still running at the range's start — and are expanded in memory.

use super::recurrence::{self, Anchor, Rule};
use super::domain::MAX_EVENT_DAYS;
use super::store::{self, event};
use crate::error::{AppError, AppResult};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use std::collections::HashMap;

/// Occurrences of one series one read expands at most.
const PER_SERIES: usize = 5000;
/// Page sizes of the range API.
pub const MAX_PAGE: u64 = 500;

/// One thing on a calendar in a range: a single event, an occurrence of a series, or an
/// occurrence changed on its own.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The row it comes from: the event, the series (for its occurrences) or the changed
    /// occurrence.
    pub row: event::Model,
    pub start: i64,
    pub end: i64,
    /// For an occurrence of a series: the start it has in the series (RECURRENCE-ID).
    pub occurrence: Option<i64>,
}

impl Item {
    pub fn single(row: event::Model) -> Self {
        let occurrence = row.recurrence_at;
        Item { start: row.start_at, end: row.end_at, occurrence, row }
    }

    /// Where it sorts and pages: by start, then by row.
    pub fn key(&self) -> (i64, i64) {
        (self.start, self.row.id)
    }

    /// The series it belongs to, if any.
    pub fn series_id(&self) -> Option<i64> {
        if self.row.recurring {
            Some(self.row.id)
        } else {
            self.row.series_id
        }
    }
}

/// Where a stored series' first occurrence is.
pub fn anchor(e: &event::Model) -> Anchor {
    Anchor { zone: e.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC), start: e.start_at, end: e.end_at, all_day: e.all_day }
}

/// A stored series' rule (it was checked when written; a rule that no longer reads is
/// logged and the series shows its first occurrence only).
pub fn rule(e: &event::Model) -> Option<Rule> {
    let text = e.rrule.as_deref().filter(|_| e.recurring)?;
    match Rule::parse(text, &anchor(e)) {
        Ok(rule) => Some(rule),
        Err(err) => {
            tracing::error!(event = e.id, rule = text, error = %err.message, "a stored recurrence rule does not read");
            None
        }
    }
}

/// The occurrences of series `e` overlapping `[from, to)`, after `after` (a page key).
pub fn expand(e: &event::Model, from: i64, to: i64, after: Option<(i64, i64)>, cap: usize) -> Vec<Item> {
    let Some(rule) = rule(e) else {
        return (e.start_at < to && e.end_at > from).then(|| Item::single(e.clone())).into_iter().collect();
    };
    let skipped = recurrence::decode_exceptions(e.exceptions.as_deref());
    // A page after the cursor walks from the cursor: the occurrences before it that still
    // overlap it (at most one a day, 62 days long) are all it reads more than it keeps.
    let from = after.map_or(from, |(start, _)| Ord::max(from, start));
    let wanted = cap.min(PER_SERIES) + MAX_EVENT_DAYS as usize + 1;
    rule.occurrences(&anchor(e), &skipped, from, to, wanted)
        .into_iter()
        .filter(|s| after.is_none_or(|a| (s.start, e.id) > a))
        .take(cap)
        .map(|s| Item { row: e.clone(), start: s.start, end: s.end, occurrence: Some(s.start) })
        .collect()
}

/// `start_at >=` the earliest start of a single event overlapping a range from `from`:
/// with `start_at < to`, a range of the `(owner_id, start_at)` index as long as the range
/// plus the calendar's longest event.
fn starts_from(owner_id: i64, from: i64) -> sea_orm::Condition {
    sea_orm::Condition::all().add(Expr::col((event::Entity, event::Column::StartAt)).gte(store::earliest_overlapping_start(owner_id, from)))
}

/// The single events (and changed occurrences) overlapping `[from, to)`, by start, at most
/// `limit`, after `after`.
async fn singles<C: ConnectionTrait>(conn: &C, owner_id: i64, from: i64, to: i64, after: Option<(i64, i64)>, limit: u64) -> AppResult<Vec<event::Model>> {
    let mut q = event::Entity::find()
        .filter(event::Column::OwnerId.eq(owner_id))
        .filter(starts_from(owner_id, from))
        .filter(event::Column::StartAt.lt(to))
        .filter(event::Column::EndAt.gt(from))
        .filter(event::Column::Recurring.eq(false));
    if let Some((start, id)) = after {
        q = q.filter(
            sea_orm::Condition::any()
                .add(event::Column::StartAt.gt(start))
                .add(sea_orm::Condition::all().add(event::Column::StartAt.eq(start)).add(event::Column::Id.gt(id))),
        );
    }
    Ok(q.order_by_asc(event::Column::StartAt).order_by_asc(event::Column::Id).limit(limit).all(conn).await?)
}

/// The calendar's series with an occurrence that may overlap `[from, to)`.
pub async fn series<C: ConnectionTrait>(conn: &C, owner_id: i64, from: i64, to: i64) -> AppResult<Vec<event::Model>> {
    Ok(event::Entity::find()
        .filter(event::Column::OwnerId.eq(owner_id))
        .filter(event::Column::Recurring.eq(true))
        .filter(event::Column::SeriesEnd.gt(from))
        .filter(event::Column::StartAt.lt(to))
        .all(conn)
        .await?)
}

/// Up to `limit` things on `owner_id`'s calendar overlapping `[from, to)` after `after`,
/// by start; and whether there are more.
pub async fn window<C: ConnectionTrait>(conn: &C, owner_id: i64, from: i64, to: i64, after: Option<(i64, i64)>, limit: u64) -> AppResult<(Vec<Item>, bool)> {
    if to <= from {
        return Err(AppError::invalid("to", "to must be after from"));
    }
    let limit = limit.clamp(1, MAX_PAGE);
    let mut items: Vec<Item> = singles(conn, owner_id, from, to, after, limit + 1).await?.into_iter().map(Item::single).collect();
    for s in series(conn, owner_id, from, to).await? {
        items.extend(expand(&s, from, to, after, limit as usize + 1));
    }
    items.sort_by_key(Item::key);
    let more = items.len() as u64 > limit;
    items.truncate(limit as usize);
    Ok((items, more))
}

/// When `owner_id` is busy within `[from, to)`: every single event and occurrence that
/// overlaps it, and every busy event of their subscribed calendars, as (start, end), by
/// start (what booking pages offer slots around).
pub async fn busy<C: ConnectionTrait>(conn: &C, owner_id: i64, from: i64, to: i64) -> AppResult<Vec<(i64, i64)>> {
    let mut spans: Vec<(i64, i64)> = singles(conn, owner_id, from, to, None, BUSY_MAX).await?.iter().map(|e| (e.start_at, e.end_at)).collect();
    for s in series(conn, owner_id, from, to).await? {
        spans.extend(expand(&s, from, to, None, PER_SERIES).iter().map(|i| (i.start, i.end)));
    }
    // Subscribed calendars make their owner busy too (unless an event is marked free).
    spans.extend(super::subscriptions::busy_between(conn, owner_id, from, to, BUSY_MAX).await?);
    spans.sort_unstable();
    Ok(spans)
}

/// Single events one busy read takes at most (a booking page shows weeks, not years).
const BUSY_MAX: u64 = 5000;

/// Every row whose occurrence overlaps `[start, end)` on `owner_id`'s calendar other than
/// `except` (the event being written): the conflicts a write reports.
pub async fn overlapping<C: ConnectionTrait>(conn: &C, owner_id: i64, start: i64, end: i64, except: Option<i64>) -> AppResult<Vec<i64>> {
    let (items, _) = window(conn, owner_id, start, end, None, 50).await?;
    let mut ids: Vec<i64> = items.iter().map(|i| i.row.id).filter(|id| Some(*id) != except).collect();
    ids.dedup();
    Ok(ids)
}

/// For each item (by its key), the rows of the others in `items` it overlaps.
pub fn conflicts_within(items: &[Item]) -> HashMap<(i64, i64), Vec<i64>> {
    let mut out: HashMap<(i64, i64), Vec<i64>> = HashMap::new();
    let mut sorted: Vec<&Item> = items.iter().collect();
    sorted.sort_by_key(|i| i.key());
    for (n, a) in sorted.iter().enumerate() {
        for b in sorted.iter().skip(n + 1) {
            if b.start >= a.end {
                break;
            }
            out.entry(a.key()).or_default().push(b.row.id);
            out.entry(b.key()).or_default().push(a.row.id);
        }
    }
    out
}

pub fn decode_cursor(raw: &str) -> AppResult<(i64, i64)> {
    let bad = || AppError::invalid("cursor", "cursor is not one this API handed out");
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?).map_err(|_| bad())?;
    let (a, b) = text.split_once('.').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

pub fn encode_cursor(item: &Item) -> String {
    let (start, id) = item.key();
    URL_SAFE_NO_PAD.encode(format!("{start}.{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, start: i64, end: i64) -> event::Model {
        event::Model {
            id,
            uid: format!("{id}@test"),
            owner_id: 1,
            title: String::new(),
            description: String::new(),
            location: String::new(),
            start_at: start,
            end_at: end,
            all_day: false,
            time_zone: "UTC".into(),
            version: 1,
            created_at: 0,
            updated_at: 0,
            recurring: false,
            rrule: None,
            exceptions: None,
            series_end: end,
            series_id: None,
            recurrence_at: None,
        }
    }

    #[test]
    fn overlaps_are_found_between_occurrences_and_single_events() {
        const H: i64 = 3_600_000;
        let mut daily = row(1, 9 * H, 10 * H);
        daily.recurring = true;
        daily.rrule = Some("FREQ=DAILY;COUNT=3".into());
        daily.exceptions = Some((33 * H).to_string());
        let items: Vec<Item> = expand(&daily, 0, 100 * H, None, 10).into_iter().chain([Item::single(row(2, 57 * H + H / 2, 59 * H))]).collect();
        assert_eq!(items.iter().map(|i| i.start).collect::<Vec<_>>(), [9 * H, 57 * H, 57 * H + H / 2], "the second day is skipped");
        let conflicts = conflicts_within(&items);
        assert_eq!(conflicts.get(&(57 * H, 1)), Some(&vec![2]));
        assert_eq!(conflicts.get(&(57 * H + H / 2, 2)), Some(&vec![1]));
        assert!(!conflicts.contains_key(&(9 * H, 1)));
        // Paging after the first occurrence continues with the third.
        assert_eq!(expand(&daily, 0, 100 * H, Some((9 * H, 1)), 10).len(), 1);
    }
}
