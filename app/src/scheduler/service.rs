//! Scheduler use cases: events and series on a user's calendar — create; change or
//! delete an event, one occurrence of a series, an occurrence and the following ones, or
//! a whole series, each checked against the version the caller read; range queries —
//! and who sees what. Every change is published to the broker
//! (`event:created|updated|deleted`) in its transaction.

use super::domain::*;
use super::occurrences::{self, Item};
use super::recurrence::{self, Rule};
use super::booking;
use super::series;
use super::store::{self, event};
use crate::accounts::domain::Profile;
use crate::accounts::service::{profile_by_id, profile_by_name};
use crate::accounts::Caller;
use crate::db_write;
use crate::error::{AppError, AppResult};
use crate::platform::changes;
use crate::platform::db::{for_update, Db, WriteTxn};
use crate::platform::secrets::random_token;
use crate::platform::state::AppState;
use crate::platform::time::{now_ms, to_rfc3339, zones};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

const DAY_MS: i64 = 86_400_000;
const MAX_SPAN_MS: i64 = MAX_EVENT_DAYS * DAY_MS;

pub async fn find_user(db: &Db, username: &str) -> AppResult<Profile> {
    profile_by_name(&db.conn, username).await?.ok_or_else(|| AppError::not_found("user"))
}

pub fn calendar_user(u: &Profile) -> CalendarUser {
    CalendarUser {
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        time_zone: u.time_zone.clone(),
        calendar_shared: u.calendar_shared,
    }
}

/// Owners and admins manage a calendar.
pub fn may_edit(caller: &Caller, owner_id: i64) -> bool {
    caller.id() == owner_id || caller.is_admin()
}

fn require_edit(caller: &Caller, owner_id: i64) -> AppResult<()> {
    if may_edit(caller, owner_id) {
        Ok(())
    } else {
        Err(AppError::forbidden("you may change only your own calendar"))
    }
}

/// Owners, admins, and everyone when the owner shares, see events in full; others see
/// only when the owner is busy.
pub fn sees_details(caller: &Caller, owner: &Profile) -> bool {
    owner.calendar_shared || may_edit(caller, owner.id)
}

/// Resolved, not yet validated, event fields.
#[derive(Clone, Debug)]
pub struct Fields {
    pub title: String,
    pub description: String,
    pub location: String,
    pub start_at: i64,
    pub end_at: i64,
    pub all_day: bool,
    pub time_zone: String,
    /// A series' rule as given (`FREQ=WEEKLY;BYDAY=MO`); none for a single event.
    pub recurrence: Option<String>,
}

impl From<&event::Model> for Fields {
    fn from(e: &event::Model) -> Self {
        Self {
            title: e.title.clone(),
            description: e.description.clone(),
            location: e.location.clone(),
            start_at: e.start_at,
            end_at: e.end_at,
            all_day: e.all_day,
            time_zone: e.time_zone.clone(),
            recurrence: e.rrule.clone().filter(|_| e.recurring),
        }
    }
}

/// Fields checked, with the rule read against them: what is written.
pub(super) struct Settled {
    pub f: Fields,
    pub rule: Option<Rule>,
}

impl Settled {
    /// Where the series' last occurrence ends (the event's end for a single event).
    fn series_end(&self) -> i64 {
        match &self.rule {
            Some(rule) => rule.bound(&self.anchor()),
            None => self.f.end_at,
        }
    }

    fn anchor(&self) -> recurrence::Anchor {
        recurrence::Anchor {
            zone: self.f.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC),
            start: self.f.start_at,
            end: self.f.end_at,
            all_day: self.f.all_day,
        }
    }
}

/// Checks `f` and reads its rule. A series whose start is not on a new rule (a Tuesday
/// start repeating on Mondays) starts at the rule's first occurrence instead, as
/// calendar apps move it (`snap`); a series keeping its rule never moves by itself: a
/// start off it is refused.
pub(super) fn settle(mut f: Fields, snap: bool) -> AppResult<Settled> {
    let title = f.title.trim();
    if title.is_empty() {
        return Err(AppError::invalid("title", "title is required"));
    }
    if title.chars().count() > TITLE_MAX {
        return Err(AppError::invalid("title", format!("title must be at most {TITLE_MAX} characters")));
    }
    f.title = title.to_owned();
    if f.description.chars().count() > DESCRIPTION_MAX {
        return Err(AppError::invalid("description", format!("description must be at most {DESCRIPTION_MAX} characters")));
    }
    if f.location.chars().count() > LOCATION_MAX {
        return Err(AppError::invalid("location", format!("location must be at most {LOCATION_MAX} characters")));
    }
    zones::parse_zone("time_zone", &f.time_zone)?;
    if f.end_at < f.start_at {
        return Err(AppError::invalid("end", "end is before start"));
    }
    if f.end_at == f.start_at {
        return Err(AppError::invalid("end", "an event must last some time: end equals start"));
    }
    if f.end_at - f.start_at > MAX_SPAN_MS {
        return Err(AppError::invalid("end", format!("an event may last at most {MAX_EVENT_DAYS} days")));
    }
    let Some(text) = f.recurrence.clone() else {
        return Ok(Settled { f, rule: None });
    };
    let mut settled = Settled { rule: None, f };
    let rule = Rule::parse(&text, &settled.anchor())?;
    let first = rule
        .first_start(&settled.anchor())
        .ok_or_else(|| AppError::invalid(recurrence::FIELD, "the rule gives no occurrence from the start on"))?;
    if first != settled.f.start_at {
        if !snap {
            return Err(AppError::invalid("start", "the series does not repeat on that day: give a start on one of its days, or a new rule"));
        }
        settled.f.end_at = settled.anchor().end_of(first);
        settled.f.start_at = first;
    }
    settled.f.recurrence = Some(rule.text());
    settled.rule = Some(rule);
    Ok(settled)
}

/// What a client sends (REST): instants as ISO-8601 with an offset, or for all-day
/// events dates (`2026-11-22`, end exclusive, default the next day) in `time_zone`.
#[derive(Clone, Debug, Default)]
pub struct Input {
    pub title: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub all_day: Option<bool>,
    pub time_zone: Option<String>,
    /// A rule makes it a series; an empty one makes a series a single event again.
    pub recurrence: Option<String>,
}

/// Applies `input` over `base` (an existing event, or defaults for a new one).
pub fn resolve(base: Fields, input: &Input) -> AppResult<Fields> {
    let mut f = base;
    if let Some(t) = &input.title {
        f.title = t.trim().to_owned();
    }
    if let Some(d) = &input.description {
        f.description = d.clone();
    }
    if let Some(l) = &input.location {
        f.location = l.trim().to_owned();
    }
    if let Some(z) = &input.time_zone {
        zones::parse_zone("time_zone", z)?;
        f.time_zone = z.clone();
    }
    if let Some(a) = input.all_day {
        f.all_day = a;
    }
    if let Some(r) = &input.recurrence {
        f.recurrence = Some(r.trim().to_owned()).filter(|r| !r.is_empty());
    }
    let zone = zones::parse_zone("time_zone", &f.time_zone)?;
    if f.all_day {
        let day = |field: &str, raw: &str| -> AppResult<i64> {
            let date = match zones::parse_date(field, raw) {
                Ok(d) => d,
                Err(_) => zones::to_local(zone, zones::parse_instant(field, raw)?).date_naive(),
            };
            Ok(zones::start_of_day(zone, date))
        };
        if let Some(s) = &input.start {
            f.start_at = day("start", s)?;
        }
        match &input.end {
            Some(e) => f.end_at = day("end", e)?,
            None if input.start.is_some() => {
                let date = zones::to_local(zone, f.start_at).date_naive() + chrono::Duration::days(1);
                f.end_at = zones::start_of_day(zone, date);
            }
            None => {}
        }
    } else {
        if let Some(s) = &input.start {
            f.start_at = zones::parse_instant("start", s)?;
        }
        if let Some(e) = &input.end {
            f.end_at = zones::parse_instant("end", e)?;
        }
    }
    Ok(f)
}

/// Defaults for a new event on `owner`'s calendar.
pub fn new_fields(owner: &Profile) -> Fields {
    Fields {
        title: String::new(),
        description: String::new(),
        location: String::new(),
        start_at: 0,
        end_at: 0,
        all_day: false,
        time_zone: owner.time_zone.clone(),
        recurrence: None,
    }
}

/// Which occurrences of a series a change or deletion is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The event, or the whole series (a change in the terms of its first occurrence).
    Whole,
    /// The whole series, a change in the terms of the occurrence starting at this
    /// instant (moving that one from 09:00 to 10:00 moves every one to 10:00).
    All(i64),
    /// The occurrence starting (in its series) at this instant.
    Occurrence(i64),
    /// That occurrence and every one after it.
    Following(i64),
}

impl Target {
    /// From a request's `scope` (`this`, `following`, `all`) and `occurrence` (ISO-8601):
    /// an occurrence alone means that occurrence; no scope, the whole event or series.
    pub fn parse(scope: Option<&str>, occurrence: Option<&str>) -> AppResult<Target> {
        let scope = match scope.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => Some(EditScope::parse(s).ok_or_else(|| AppError::invalid("scope", "scope is this, following or all"))?),
            None => None,
        };
        let occurrence = occurrence.map(str::trim).filter(|s| !s.is_empty()).map(|o| zones::parse_instant("occurrence", o)).transpose()?;
        match (scope, occurrence) {
            (Some(EditScope::All), Some(t)) => Ok(Target::All(t)),
            (Some(EditScope::All), None) | (None, None) => Ok(Target::Whole),
            (Some(EditScope::This) | None, Some(t)) => Ok(Target::Occurrence(t)),
            (Some(EditScope::Following), Some(t)) => Ok(Target::Following(t)),
            (Some(_), None) => Err(AppError::invalid("occurrence", "give the occurrence's start (occurrence_start) with scope this or following")),
        }
    }
}

/// An item as the API shows it to someone who sees only free/busy (`busy_only`) or all.
pub fn view(item: &Item, owner: &str, busy_only: bool, conflicts: Vec<i64>) -> EventView {
    let e = &item.row;
    EventView {
        id: e.id,
        uid: e.uid.clone(),
        owner: owner.to_owned(),
        title: if busy_only { "Busy".into() } else { e.title.clone() },
        description: if busy_only { String::new() } else { e.description.clone() },
        location: if busy_only { String::new() } else { e.location.clone() },
        start: to_rfc3339(item.start),
        end: to_rfc3339(item.end),
        all_day: e.all_day,
        time_zone: e.time_zone.clone(),
        version: e.version,
        busy_only,
        conflicts: if busy_only { Vec::new() } else { conflicts },
        created_at: to_rfc3339(e.created_at),
        updated_at: to_rfc3339(e.updated_at),
        recurrence: e.rrule.clone().filter(|_| e.recurring && !busy_only),
        series_id: item.series_id(),
        occurrence_start: item.occurrence.map(to_rfc3339),
    }
}

/// Publishes a change to the broker and tells the pages showing the calendar (only
/// which row changed: a page reloads what its viewer may see).
pub(super) async fn announce(txn: &WriteTxn, topic: &str, item: &Item, owner: &str) -> AppResult<()> {
    changes::record(&**txn, &calendar_channel(item.row.owner_id), &serde_json::json!({"event": item.row.id})).await?;
    txn.publish(topic, &view(item, owner, false, Vec::new())).await
}

/// The live channel of one calendar.
pub fn calendar_channel(owner_id: i64) -> String {
    format!("calendar/{owner_id}")
}

/// The channel a page showing `username`'s calendar (none: the caller's own) follows:
/// any member may, as any member sees at least when its owner is busy.
pub async fn calendar_events_channel(db: &Db, caller: &Caller, username: Option<&str>) -> AppResult<String> {
    let owner = find_user(db, username.filter(|u| !u.is_empty()).unwrap_or(caller.username())).await?;
    Ok(calendar_channel(owner.id))
}

/// Writes `s` into a new row on `owner_id`'s calendar: a single event, a series, or
/// (`occurrence_of`) an occurrence of a series changed on its own.
pub(super) async fn insert(txn: &WriteTxn, owner_id: i64, s: &Settled, occurrence_of: Option<(i64, i64)>, exceptions: Option<String>) -> AppResult<event::Model> {
    insert_as(txn, owner_id, format!("{}@switchboard", random_token(18)), s, occurrence_of, exceptions).await
}

/// [`insert`] with a given iCalendar UID (an import's, derived from the file's own).
pub(super) async fn insert_as(
    txn: &WriteTxn,
    owner_id: i64,
    uid: String,
    s: &Settled,
    occurrence_of: Option<(i64, i64)>,
    exceptions: Option<String>,
) -> AppResult<event::Model> {
    let now = now_ms();
    let mut row = event::ActiveModel {
        uid: Set(uid),
        owner_id: Set(owner_id),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        exceptions: Set(exceptions),
        series_id: Set(occurrence_of.map(|o| o.0)),
        recurrence_at: Set(occurrence_of.map(|o| o.1)),
        ..Default::default()
    };
    write_fields(&mut row, s);
    if s.rule.is_some() {
        limit_series(&**txn, owner_id).await?;
    }
    let e = event::Entity::insert(row).exec_with_returning(&**txn).await?;
    store::raise_longest(&**txn, owner_id, e.end_at - e.start_at).await?;
    Ok(e)
}

/// Series one calendar may have running at once. Every read of the calendar (its page,
/// its booking page, which anyone may open) expands each running series, so their number
/// is what bounds a read's work.
pub const MAX_RUNNING_SERIES: u64 = 500;

/// The series running now on `owner_id`'s calendar.
async fn running_series(conn: &impl ConnectionTrait, owner_id: i64) -> AppResult<u64> {
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    Ok(event::Entity::find()
        .filter(event::Column::OwnerId.eq(owner_id))
        .filter(event::Column::Recurring.eq(true))
        .filter(event::Column::SeriesEnd.gt(now_ms()))
        .count(conn)
        .await?)
}

/// Keeps `owner_id`'s calendar within [`MAX_RUNNING_SERIES`]; concurrent additions to one
/// calendar take turns (see [`hold_account`](crate::accounts::service::hold_account)).
async fn limit_series(conn: &impl ConnectionTrait, owner_id: i64) -> AppResult<()> {
    crate::accounts::service::hold_account(conn, owner_id).await?;
    if running_series(conn, owner_id).await? >= MAX_RUNNING_SERIES {
        return Err(AppError::invalid(recurrence::FIELD, format!("a calendar may have at most {MAX_RUNNING_SERIES} repeating events running at once")));
    }
    Ok(())
}

/// Keeps [`MAX_RUNNING_SERIES`] when a change makes `current` a running series: an event
/// that becomes one, or a series that had ended and is made to go on (a series counts only
/// while it runs, so ended ones could otherwise be piled up and revived past the limit).
pub(super) async fn limit_revived(conn: &impl ConnectionTrait, current: &event::Model, s: &Settled) -> AppResult<()> {
    let now = now_ms();
    let ran = current.recurring && current.series_end > now;
    if s.rule.is_some() && s.series_end() > now && !ran {
        limit_series(conn, current.owner_id).await?;
    }
    Ok(())
}

/// Sets what `s` says on a row being written (not its exceptions or links).
pub(super) fn write_fields(row: &mut event::ActiveModel, s: &Settled) {
    row.title = Set(s.f.title.clone());
    row.description = Set(s.f.description.clone());
    row.location = Set(s.f.location.clone());
    row.start_at = Set(s.f.start_at);
    row.end_at = Set(s.f.end_at);
    row.all_day = Set(s.f.all_day);
    row.time_zone = Set(s.f.time_zone.clone());
    row.recurring = Set(s.rule.is_some());
    row.rrule = Set(s.rule.as_ref().map(Rule::text));
    row.series_end = Set(s.series_end());
}

/// Marks a row being written as a new version of `current`.
pub(super) fn next_version(row: &mut event::ActiveModel, current: &event::Model) {
    row.version = Set(current.version + 1);
    row.updated_at = Set(Ord::max(now_ms(), current.updated_at + 1));
}

/// Adds an event or a series to `owner`'s calendar, if `caller` manages it.
#[tracing::instrument(skip(db, caller, fields), fields(owner = %owner.username, caller = %caller.username()))]
pub async fn create(db: &Db, caller: &Caller, owner: &Profile, fields: Fields) -> AppResult<EventView> {
    require_edit(caller, owner.id)?;
    let settled = settle(fields, true)?;
    db_write!(db, |txn| {
        let e = insert(&txn, owner.id, &settled, None, None).await?;
        let conflicts = occurrences::overlapping(&*txn, owner.id, e.start_at, e.end_at, Some(e.id)).await?;
        let item = Item::single(e);
        announce(&txn, "event:created", &item, &owner.username).await?;
        Ok(view(&item, &owner.username, false, conflicts))
    })
}

/// Creates an event on `owner`'s calendar (none: the caller's own) from the fields `fill`
/// sets on that calendar's defaults: the one path of the REST API and the calendar page.
pub async fn create_on(db: &Db, caller: &Caller, owner: Option<&str>, fill: impl FnOnce(Fields) -> AppResult<Fields>) -> AppResult<EventView> {
    let owner = owner.unwrap_or(caller.username());
    let owner = find_user(db, owner).await?;
    let fields = fill(new_fields(&owner))?;
    create(db, caller, &owner, fields).await
}

async fn find_event(db: &Db, id: i64) -> AppResult<(event::Model, Profile)> {
    let e = event::Entity::find_by_id(id).one(&db.conn).await?.ok_or_else(|| AppError::not_found("event"))?;
    let owner = profile_by_id(&db.conn, e.owner_id).await?.ok_or_else(|| AppError::not_found("event"))?;
    Ok((e, owner))
}

/// One event (a series: its first occurrence and its rule) as `caller` may see it (only
/// free/busy of others' unshared calendars).
pub async fn event_for(db: &Db, caller: &Caller, id: i64) -> AppResult<EventView> {
    let (e, owner) = find_event(db, id).await?;
    let busy_only = !sees_details(caller, &owner);
    let conflicts = occurrences::overlapping(&db.conn, owner.id, e.start_at, e.end_at, Some(e.id)).await?;
    Ok(view(&Item::single(e), &owner.username, busy_only, conflicts))
}

/// One event as an iCalendar file (a series with its changed occurrences), for callers
/// who see its details.
pub async fn event_ics(db: &Db, caller: &Caller, id: i64) -> AppResult<String> {
    let (e, owner) = find_event(db, id).await?;
    if !sees_details(caller, &owner) {
        return Err(AppError::forbidden("this calendar is not shared with you"));
    }
    let mut rows = vec![e.clone()];
    if e.recurring {
        rows.extend(series::changed_occurrences(&db.conn, e.id, None).await?);
    }
    Ok(super::ical::calendar(&owner.display_name, &owner.time_zone, &rows))
}

async fn lock(txn: &WriteTxn, db: &Db, id: i64) -> AppResult<event::Model> {
    for_update(event::Entity::find_by_id(id), db.backend()).one(&**txn).await?.ok_or_else(|| AppError::not_found("event"))
}

async fn owner_of(conn: &impl ConnectionTrait, e: &event::Model) -> AppResult<Profile> {
    profile_by_id(conn, e.owner_id).await?.ok_or_else(|| AppError::internal_because(format!("event {} has no owner {}", e.id, e.owner_id)))
}

pub(super) fn stale(current: i32) -> AppError {
    AppError::conflict("version_conflict", format!("the event was changed meanwhile (now version {current}); reload and retry"))
        .on_field("version")
}

/// An occurrence changed on its own is changed alone; the following ones are its series'.
fn changed_on_its_own(e: &event::Model) -> AppError {
    AppError::invalid(
        "scope",
        format!("this occurrence was changed on its own; change its series (event {}) for the following occurrences", e.series_id.unwrap_or(e.id)),
    )
}

/// Changes an event, or the part of a series `target` names, if `caller` manages its
/// calendar — judged by the stored row's owner, whatever the request says — and
/// `version` is still its version (else 409). For an occurrence of a series, `version`
/// is the series'.
#[tracing::instrument(skip(db, caller, change), fields(caller = %caller.username()))]
pub async fn update(db: &Db, caller: &Caller, id: i64, version: i32, target: Target, change: impl Fn(Fields) -> AppResult<Fields> + Sync) -> AppResult<EventView> {
    db_write!(db, |txn| {
        let current = lock(&txn, db, id).await?;
        require_edit(caller, current.owner_id)?;
        if current.version != version {
            return Err(stale(current.version));
        }
        let owner = owner_of(&*txn, &current).await?;
        let item = match (current.recurring, target) {
            (true, Target::Occurrence(t)) => series::change_occurrence(&txn, &current, t, &change, &owner.username).await?,
            (true, Target::Following(t)) if t != current.start_at => series::split(&txn, &current, t, &change, &owner.username).await?,
            (true, Target::All(t)) => series::change_all(&txn, &current, Some(t), &change, &owner.username).await?,
            (true, _) => series::change_all(&txn, &current, None, &change, &owner.username).await?,
            (false, Target::Following(_)) if current.series_id.is_some() => return Err(changed_on_its_own(&current)),
            (false, _) => change_single(&txn, &current, &change, &owner.username).await?,
        };
        let conflicts = occurrences::overlapping(&*txn, item.row.owner_id, item.start, item.end, Some(item.row.id)).await?;
        Ok(view(&item, &owner.username, false, conflicts))
    })
}

async fn change_single(txn: &WriteTxn, current: &event::Model, change: &(dyn Fn(Fields) -> AppResult<Fields> + Sync), owner: &str) -> AppResult<Item> {
    let f = change(Fields::from(current))?;
    if current.series_id.is_some() && f.recurrence.is_some() {
        return Err(AppError::invalid(recurrence::FIELD, "an occurrence changed on its own cannot repeat; change its series"));
    }
    let settled = settle(f, true)?;
    limit_revived(&**txn, current, &settled).await?;
    let mut row: event::ActiveModel = current.clone().into();
    write_fields(&mut row, &settled);
    next_version(&mut row, current);
    let e = event::Entity::update(row).exec(&**txn).await?;
    store::raise_longest(&**txn, e.owner_id, e.end_at - e.start_at).await?;
    let item = Item::single(e);
    announce(txn, "event:updated", &item, owner).await?;
    Ok(item)
}

/// Deletes an event, or the part of a series `target` names, if `caller` manages its
/// calendar (judged by the stored row) and, when `version` is given, it is still that
/// version.
#[tracing::instrument(skip(state, caller), fields(caller = %caller.username()))]
pub async fn delete(state: &AppState, caller: &Caller, id: i64, version: Option<i32>, target: Target) -> AppResult<()> {
    let db = &state.db;
    db_write!(db, |txn| {
        let current = lock(&txn, db, id).await?;
        require_edit(caller, current.owner_id)?;
        if version.is_some_and(|v| v != current.version) {
            return Err(stale(current.version));
        }
        let owner = owner_of(&*txn, &current).await?;
        match (current.recurring, target) {
            (true, Target::Occurrence(t)) => return series::skip_occurrence(&txn, &current, t, &owner.username).await,
            (true, Target::Following(t)) if t != current.start_at => return series::end_before(&txn, &current, t, &owner.username).await,
            (true, _) => series::delete_all(&txn, &current, &owner.username).await?,
            (false, Target::Following(_)) if current.series_id.is_some() => return Err(changed_on_its_own(&current)),
            (false, _) => {
                event::Entity::delete_by_id(id).exec(&*txn).await?;
                announce(&txn, "event:deleted", &Item::single(current), &owner.username).await?;
            }
        }
        // The event is gone as a whole: a booking made of it is canceled with it.
        booking::event_deleted(state, &txn, id, &owner.username).await
    })
}

/// A page of `owner`'s calendar overlapping `[from, to)` — single events and occurrences
/// of series, by start — as `caller` may see it: in full for owners, admins and shared
/// calendars, else as free/busy.
pub async fn events_for(db: &Db, caller: &Caller, owner: &Profile, from: i64, to: i64, cursor: Option<&str>, limit: u64) -> AppResult<(Vec<EventView>, Option<String>)> {
    let after = cursor.map(occurrences::decode_cursor).transpose()?;
    let (items, more) = occurrences::window(&db.conn, owner.id, from, to, after, limit).await?;
    let busy_only = !sees_details(caller, owner);
    let conflicts = occurrences::conflicts_within(&items);
    let next_cursor = items.last().filter(|_| more).map(occurrences::encode_cursor);
    let events = items.iter().map(|i| view(i, &owner.username, busy_only, conflicts.get(&i.key()).cloned().unwrap_or_default())).collect();
    Ok((events, next_cursor))
}
