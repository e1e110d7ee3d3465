//! Scheduler use cases: events on a user's calendar (create, change with optimistic
//! concurrency, delete, range queries), who sees what, profiles, and iCal feeds. Every
//! change is published to the broker (`event:created|updated|deleted`) in its transaction.

use crate::db_write;
use super::domain::*;
use super::store::{self, event, feed, legacy_feed};
use crate::accounts::domain::Profile;
use crate::accounts::service::{profile_by_id, profile_by_name};
use crate::accounts::Caller;
use crate::error::{AppError, AppResult};
use crate::platform::db::{for_update, is_unique_violation, Db, WriteTxn};
use crate::platform::secrets::{random_token, sha256_hex};
use crate::platform::state::AppState;
use crate::platform::time::{now_ms, to_rfc3339, zones};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

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
        }
    }
}

fn validate(f: &Fields) -> AppResult<()> {
    let title = f.title.trim();
    if title.is_empty() {
        return Err(AppError::invalid("title", "title is required"));
    }
    if title.chars().count() > TITLE_MAX {
        return Err(AppError::invalid("title", format!("title must be at most {TITLE_MAX} characters")));
    }
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
    Ok(())
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
    }
}

pub fn view(e: &event::Model, owner: &str, busy_only: bool, conflicts: Vec<i64>) -> EventView {
    EventView {
        id: e.id,
        uid: e.uid.clone(),
        owner: owner.to_owned(),
        title: if busy_only { "Busy".into() } else { e.title.clone() },
        description: if busy_only { String::new() } else { e.description.clone() },
        location: if busy_only { String::new() } else { e.location.clone() },
        start: to_rfc3339(e.start_at),
        end: to_rfc3339(e.end_at),
        all_day: e.all_day,
        time_zone: e.time_zone.clone(),
        version: e.version,
        busy_only,
        conflicts: if busy_only { Vec::new() } else { conflicts },
        created_at: to_rfc3339(e.created_at),
        updated_at: to_rfc3339(e.updated_at),
    }
}

/// Events of `owner_id` overlapping `[start, end)`, other than `except`.
pub async fn overlapping<C: ConnectionTrait>(conn: &C, owner_id: i64, start: i64, end: i64, except: Option<i64>) -> AppResult<Vec<i64>> {
    let mut q = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .filter(event::Column::OwnerId.eq(owner_id))
        .filter(starts_from(owner_id, start))
        .filter(event::Column::StartAt.lt(end))
        .filter(event::Column::EndAt.gt(start));
    if let Some(id) = except {
        q = q.filter(event::Column::Id.ne(id));
    }
    Ok(q.order_by_asc(event::Column::StartAt).limit(50).into_tuple().all(conn).await?)
}

async fn announce(txn: &WriteTxn, topic: &str, e: &event::Model, owner: &str) -> AppResult<()> {
    txn.publish(topic, &view(e, owner, false, Vec::new())).await
}

/// Adds an event to `owner`'s calendar, if `caller` manages it.
#[tracing::instrument(skip(db, caller, fields), fields(owner = %owner.username, caller = %caller.username()))]
pub async fn create(db: &Db, caller: &Caller, owner: &Profile, fields: Fields) -> AppResult<EventView> {
    require_edit(caller, owner.id)?;
    validate(&fields)?;
    db_write!(db, |txn| {
        let now = now_ms();
        let row = event::ActiveModel {
            uid: Set(format!("{}@switchboard", random_token(18))),
            owner_id: Set(owner.id),
            title: Set(fields.title.trim().to_owned()),
            description: Set(fields.description.clone()),
            location: Set(fields.location.clone()),
            start_at: Set(fields.start_at),
            end_at: Set(fields.end_at),
            all_day: Set(fields.all_day),
            time_zone: Set(fields.time_zone.clone()),
            version: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        let e = event::Entity::insert(row).exec_with_returning(&*txn).await?;
        store::raise_longest(&*txn, owner.id, e.end_at - e.start_at).await?;
        let conflicts = overlapping(&*txn, owner.id, e.start_at, e.end_at, Some(e.id)).await?;
        announce(&txn, "event:created", &e, &owner.username).await?;
        Ok(view(&e, &owner.username, false, conflicts))
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

/// One event as `caller` may see it (only free/busy of others' unshared calendars).
pub async fn event_for(db: &Db, caller: &Caller, id: i64) -> AppResult<EventView> {
    let (e, owner) = find_event(db, id).await?;
    let busy_only = !sees_details(caller, &owner);
    let conflicts = overlapping(&db.conn, owner.id, e.start_at, e.end_at, Some(e.id)).await?;
    Ok(view(&e, &owner.username, busy_only, conflicts))
}

/// One event as an iCalendar file, for callers who see its details.
pub async fn event_ics(db: &Db, caller: &Caller, id: i64) -> AppResult<String> {
    let (e, owner) = find_event(db, id).await?;
    if !sees_details(caller, &owner) {
        return Err(AppError::forbidden("this calendar is not shared with you"));
    }
    Ok(super::ical::calendar(&owner.display_name, &owner.time_zone, std::slice::from_ref(&e)))
}

/// Changes an event if `caller` manages its calendar — judged by the stored row's owner,
/// whatever the request says — and `version` is still its version (else 409).
#[tracing::instrument(skip(db, caller, change), fields(caller = %caller.username()))]
pub async fn update(db: &Db, caller: &Caller, id: i64, version: i32, change: impl Fn(Fields) -> AppResult<Fields>) -> AppResult<EventView> {
    db_write!(db, |txn| {
        let current = for_update(event::Entity::find_by_id(id), db.backend())
            .one(&*txn)
            .await?
            .ok_or_else(|| AppError::not_found("event"))?;
        require_edit(caller, current.owner_id)?;
        if current.version != version {
            return Err(stale(current.version));
        }
        let f = change(Fields::from(&current))?;
        validate(&f)?;
        let mut row: event::ActiveModel = current.clone().into();
        row.title = Set(f.title.trim().to_owned());
        row.description = Set(f.description);
        row.location = Set(f.location);
        row.start_at = Set(f.start_at);
        row.end_at = Set(f.end_at);
        row.all_day = Set(f.all_day);
        row.time_zone = Set(f.time_zone);
        row.version = Set(current.version + 1);
        row.updated_at = Set(Ord::max(now_ms(), current.updated_at + 1));
        let e = event::Entity::update(row).exec(&*txn).await?;
        store::raise_longest(&*txn, e.owner_id, e.end_at - e.start_at).await?;
        let owner = profile_by_id(&*txn, e.owner_id).await?.ok_or_else(|| AppError::internal_because(format!("event {} has no owner {}", e.id, e.owner_id)))?;
        let conflicts = overlapping(&*txn, e.owner_id, e.start_at, e.end_at, Some(e.id)).await?;
        announce(&txn, "event:updated", &e, &owner.username).await?;
        Ok(view(&e, &owner.username, false, conflicts))
    })
}

fn stale(current: i32) -> AppError {
    AppError::conflict("version_conflict", format!("the event was changed meanwhile (now version {current}); reload and retry"))
        .on_field("version")
}

/// Deletes an event if `caller` manages its calendar (judged by the stored row) and, when
/// `version` is given, it is still that version.
#[tracing::instrument(skip(db, caller), fields(caller = %caller.username()))]
pub async fn delete(db: &Db, caller: &Caller, id: i64, version: Option<i32>) -> AppResult<()> {
    db_write!(db, |txn| {
        let current = for_update(event::Entity::find_by_id(id), db.backend())
            .one(&*txn)
            .await?
            .ok_or_else(|| AppError::not_found("event"))?;
        require_edit(caller, current.owner_id)?;
        if version.is_some_and(|v| v != current.version) {
            return Err(stale(current.version));
        }
        let owner = profile_by_id(&*txn, current.owner_id).await?.ok_or_else(|| AppError::internal_because(format!("event {id} has no owner {}", current.owner_id)))?;
        event::Entity::delete_by_id(id).exec(&*txn).await?;
        announce(&txn, "event:deleted", &current, &owner.username).await?;
        Ok(())
    })
}

/// A page of `owner_id`'s events overlapping `[from, to)`, by start.
pub struct Page {
    pub events: Vec<event::Model>,
    pub next_cursor: Option<String>,
}

fn decode_cursor(raw: &str) -> AppResult<(i64, i64)> {
    let bad = || AppError::invalid("cursor", "cursor is not one this API handed out");
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?).map_err(|_| bad())?;
    let (a, b) = text.split_once('.').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

fn encode_cursor(e: &event::Model) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{}", e.start_at, e.id))
}

/// A page of `owner`'s events overlapping `[from, to)` as `caller` may see them: in full
/// for owners, admins and shared calendars, else as free/busy.
pub async fn events_for(db: &Db, caller: &Caller, owner: &Profile, from: i64, to: i64, cursor: Option<&str>, limit: u64) -> AppResult<(Vec<EventView>, Option<String>)> {
    let page = range(db, owner.id, from, to, cursor, limit).await?;
    let busy_only = !sees_details(caller, owner);
    let conflicts = conflicts_within(&page.events);
    let events = page
        .events
        .iter()
        .map(|e| view(e, &owner.username, busy_only, conflicts.get(&e.id).cloned().unwrap_or_default()))
        .collect();
    Ok((events, page.next_cursor))
}

/// `start_at >= ` the earliest start of an event overlapping a range from `from`: with
/// `start_at < to`, a range of the `(owner_id, start_at)` index as long as the range
/// plus the calendar's longest event.
fn starts_from(owner_id: i64, from: i64) -> sea_orm::Condition {
    sea_orm::Condition::all().add(Expr::col((event::Entity, event::Column::StartAt)).gte(store::earliest_overlapping_start(owner_id, from)))
}

/// Served by the `(owner_id, start_at)` index (see [`starts_from`]).
#[tracing::instrument(skip(db))]
pub(super) async fn range(db: &Db, owner_id: i64, from: i64, to: i64, cursor: Option<&str>, limit: u64) -> AppResult<Page> {
    if to <= from {
        return Err(AppError::invalid("to", "to must be after from"));
    }
    let mut q = event::Entity::find()
        .filter(event::Column::OwnerId.eq(owner_id))
        .filter(starts_from(owner_id, from))
        .filter(event::Column::StartAt.lt(to))
        .filter(event::Column::EndAt.gt(from));
    if let Some(c) = cursor {
        let (start, id) = decode_cursor(c)?;
        q = q.filter(
            sea_orm::Condition::any()
                .add(event::Column::StartAt.gt(start))
                .add(sea_orm::Condition::all().add(event::Column::StartAt.eq(start)).add(event::Column::Id.gt(id))),
        );
    }
    let limit = limit.clamp(1, 500);
    let mut events = q
        .order_by_asc(event::Column::StartAt)
        .order_by_asc(event::Column::Id)
        .limit(limit + 1)
        .all(&db.conn)
        .await?;
    let next_cursor = (events.len() as u64 > limit).then(|| {
        events.truncate(limit as usize);
        encode_cursor(events.last().expect("limit is at least 1"))
    });
    Ok(Page { events, next_cursor })
}

/// For each event, the others in `events` it overlaps.
pub fn conflicts_within(events: &[event::Model]) -> std::collections::HashMap<i64, Vec<i64>> {
    let mut out: std::collections::HashMap<i64, Vec<i64>> = std::collections::HashMap::new();
    let mut sorted: Vec<&event::Model> = events.iter().collect();
    sorted.sort_by_key(|e| (e.start_at, e.id));
    for (i, a) in sorted.iter().enumerate() {
        for b in sorted.iter().skip(i + 1) {
            if b.start_at >= a.end_at {
                break;
            }
            out.entry(a.id).or_default().push(b.id);
            out.entry(b.id).or_default().push(a.id);
        }
    }
    out
}

/// What a sealed feed address is bound to (see `platform::crypto`).
const FEED_CONTEXT: &str = "calendar_feed_tokens.token_sealed";

/// The caller's secret feed address: the existing one, a new one on first call, or
/// (rotate) a replacement that revokes the old address at once. The token is stored as
/// its digest (what the feed is looked up by) and sealed (so its owner can see the
/// address again): a copy of the database alone opens no calendar.
pub async fn feed_url(state: &AppState, caller: &Caller, rotate: bool) -> AppResult<String> {
    let token = feed_token(state, caller.id(), rotate).await?;
    Ok(format!("{}/ical/{token}.ics", state.settings.public_url.trim_end_matches('/')))
}

async fn feed_token(state: &AppState, user_id: i64, rotate: bool) -> AppResult<String> {
    let db = &state.db;
    if !rotate {
        if let Some(f) = feed::Entity::find_by_id(user_id).one(&db.conn).await? {
            return state.sealer.open(FEED_CONTEXT, &f.token_sealed).map_err(AppError::internal_because);
        }
    }
    let token = random_token(24);
    let txn = db.write_txn().await?;
    feed::Entity::delete_many().filter(feed::Column::UserId.eq(user_id)).exec(&*txn).await?;
    let row = feed::ActiveModel {
        user_id: Set(user_id),
        token_hash: Set(sha256_hex(&token)),
        token_sealed: Set(state.sealer.seal(FEED_CONTEXT, &token)),
        created_at: Set(now_ms()),
    };
    match feed::Entity::insert(row).exec_without_returning(&*txn).await {
        Ok(_) => {}
        // Two first calls at once (the settings page and the API, on MySQL where nothing
        // serialises them): the other one's token stands, and both callers get it.
        Err(e) if is_unique_violation(&e) => {
            drop(txn);
            let f = feed::Entity::find_by_id(user_id).one(&db.conn).await?.ok_or_else(|| AppError::internal_because(e))?;
            return state.sealer.open(FEED_CONTEXT, &f.token_sealed).map_err(AppError::internal_because);
        }
        Err(e) => return Err(e.into()),
    }
    txn.commit().await?;
    Ok(token)
}

/// Moves feed tokens stored in clear by earlier versions (`calendar_feeds`) into the
/// hashed and sealed table, a batch at a time, at start-up. Their addresses keep working.
pub async fn seal_legacy_feeds(state: &AppState) -> AppResult<u64> {
    let mut moved = 0;
    loop {
        let batch = legacy_feed::Entity::find().limit(500).all(&state.db.conn).await?;
        if batch.is_empty() {
            return Ok(moved);
        }
        db_write!(state.db, |txn| {
            for old in &batch {
                // A user who has a new-style token already keeps it.
                if feed::Entity::find_by_id(old.user_id).one(&*txn).await?.is_some() {
                    continue;
                }
                let row = feed::ActiveModel {
                    user_id: Set(old.user_id),
                    token_hash: Set(sha256_hex(&old.token)),
                    token_sealed: Set(state.sealer.seal(FEED_CONTEXT, &old.token)),
                    created_at: Set(old.created_at),
                };
                feed::Entity::insert(row).exec_without_returning(&*txn).await?;
            }
            let ids: Vec<i64> = batch.iter().map(|f| f.user_id).collect();
            legacy_feed::Entity::delete_many().filter(legacy_feed::Column::UserId.is_in(ids)).exec(&*txn).await?;
            Ok(())
        })?;
        moved += batch.len() as u64;
    }
}

/// The calendar behind a feed token: its owner and their events from 180 days ago to two
/// years ahead (at most 5,000).
pub async fn feed(db: &Db, token: &str) -> AppResult<(Profile, Vec<event::Model>)> {
    let f = feed::Entity::find().filter(feed::Column::TokenHash.eq(sha256_hex(token))).one(&db.conn).await?.ok_or_else(|| AppError::not_found("calendar"))?;
    let owner = profile_by_id(&db.conn, f.user_id).await?.ok_or_else(|| AppError::not_found("calendar"))?;
    let now = now_ms();
    let events = event::Entity::find()
        .filter(event::Column::OwnerId.eq(owner.id))
        .filter(event::Column::StartAt.gte(now - 180 * DAY_MS))
        .filter(event::Column::StartAt.lt(now + 730 * DAY_MS))
        .order_by_asc(event::Column::StartAt)
        .limit(5000)
        .all(&db.conn)
        .await?;
    Ok((owner, events))
}
