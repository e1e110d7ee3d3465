//! Booking pages: each user may publish weekly hours (in their zone), a slot length,
//! buffers, a minimum notice and a horizon; visitors see the free slots — those hours
//! less every busy event, single or recurring — in their own zone, and book one with a
//! name and an e-mail address. A booking is an event on the owner's calendar and a
//! meeting in the meetings feed (handed over through [`MeetingsOutlet`], which start-up
//! connects to the meetings capability), published like any other; its secret link
//! cancels both.

use super::domain::*;
use super::occurrences;
use super::repeat::WEEKDAYS;
use super::service::{announce, find_user, insert, settle, Fields};
use super::store::{booking, booking_page, event};
use crate::accounts::domain::Profile;
use crate::accounts::Caller;
use crate::db_write;
use crate::error::{AppError, AppResult};
use crate::platform::db::{for_update, Db, WriteTxn};
use crate::platform::rate_limit::RateLimiter;
use crate::platform::secrets::{random_token, sha256_hex};
use crate::platform::state::AppState;
use crate::platform::time::{now_ms, to_rfc3339, zones};
use chrono::{Datelike, NaiveTime, Timelike};
use chrono_tz::Tz;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use std::collections::BTreeMap;
use std::sync::Arc;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
const NAME_MAX: usize = 100;
const EMAIL_MAX: usize = 254;
/// Ranges of open hours a day (what fits the stored weekly hours).
const MAX_RANGES: usize = 8;
/// Upcoming bookings one e-mail address may hold on one page.
const PER_EMAIL: u64 = 3;

/// A booking as the meetings feed takes it (same shape as a Calendly booking).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookedMeeting {
    /// Unique per booking: the meeting's key in the feed.
    pub event_uri: String,
    pub name: String,
    pub invitee_name: String,
    pub invitee_email: String,
    pub invitee_zone: String,
    /// The owner's username (the host).
    pub host: String,
    pub start: i64,
    pub end: i64,
}

/// Where bookings go besides the calendar: the meetings feed. Start-up installs it (the
/// scheduler names no other capability); it writes in the booking's transaction.
#[async_trait::async_trait]
pub trait MeetingsOutlet: Send + Sync {
    async fn booked(&self, txn: &WriteTxn, meeting: &BookedMeeting) -> AppResult<()>;
    async fn canceled(&self, txn: &WriteTxn, meeting: &BookedMeeting, by: Canceler) -> AppResult<()>;
}

/// Who canceled a booking: the visitor with the link, or the owner by deleting its event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Canceler {
    Invitee,
    Host,
}

/// The booking pages' in-process parts: the per-address limit and the meetings outlet.
#[derive(Clone)]
pub struct BookingParts {
    pub limiter: RateLimiter,
    pub meetings: Arc<dyn MeetingsOutlet>,
}

/// A booking page's rules, read once from its row or a form.
#[derive(Clone, Debug, PartialEq)]
struct Availability {
    enabled: bool,
    title: String,
    /// Per weekday (Monday first), open minutes after local midnight.
    hours: [Vec<(u32, u32)>; 7],
    zone: Tz,
    slot: i64,
    before: i64,
    after: i64,
    notice: i64,
    horizon: i64,
}

/// `09:00-12:00, 13:00-17:00` → minutes, checked.
fn parse_hours(field: &str, text: &str) -> AppResult<Vec<(u32, u32)>> {
    let mut out = Vec::new();
    let ranges: Vec<&str> = text.split(',').map(str::trim).filter(|r| !r.is_empty()).collect();
    if ranges.len() > MAX_RANGES {
        return Err(AppError::invalid(field, format!("at most {MAX_RANGES} ranges a day")));
    }
    for range in ranges {
        let bad = || AppError::invalid(field, format!("{range:?} is not a range like 09:00-17:00"));
        let (a, b) = range.split_once('-').ok_or_else(bad)?;
        let minute = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map(|t| t.hour() * 60 + t.minute()).map_err(|_| bad());
        let (from, to) = (minute(a)?, if b.trim() == "24:00" { 1440 } else { minute(b)? });
        if to <= from {
            return Err(AppError::invalid(field, format!("{range}: the end is not after the start")));
        }
        if out.iter().any(|&(f, t)| from < t && f < to) {
            return Err(AppError::invalid(field, format!("{range} overlaps another range of the day")));
        }
        out.push((from, to));
    }
    out.sort_unstable();
    Ok(out)
}

/// Monday 0 … Sunday 6, from `MO` … `SU`.
fn day_index(code: &str) -> Option<usize> {
    WEEKDAYS.iter().position(|(d, _)| *d == code)
}

fn format_hours(ranges: &[(u32, u32)]) -> String {
    ranges.iter().map(|(a, b)| format!("{:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60)).collect::<Vec<_>>().join(", ")
}

impl Availability {
    /// A new page: weekdays 09:00–17:00 in the owner's zone, 30-minute slots.
    fn default_for(owner: &Profile) -> Self {
        let workday = vec![(9 * 60, 17 * 60)];
        Availability {
            enabled: false,
            title: "30 minute meeting".into(),
            hours: [workday.clone(), workday.clone(), workday.clone(), workday.clone(), workday, vec![], vec![]],
            zone: owner.time_zone.parse().unwrap_or(Tz::UTC),
            slot: 30 * MINUTE_MS,
            before: 0,
            after: 0,
            notice: 4 * 60 * MINUTE_MS,
            horizon: 30 * DAY_MS,
        }
    }

    fn from_row(row: &booking_page::Model) -> Self {
        let mut hours: [Vec<(u32, u32)>; 7] = Default::default();
        for part in row.weekly_hours.split(';') {
            if let Some((day, ranges)) = part.split_once('=') {
                if let Some(i) = day_index(day) {
                    hours[i] = parse_hours("hours", ranges).unwrap_or_default();
                }
            }
        }
        Availability {
            enabled: row.enabled,
            title: row.title.clone(),
            hours,
            zone: row.time_zone.parse().unwrap_or(Tz::UTC),
            slot: row.slot_minutes as i64 * MINUTE_MS,
            before: row.buffer_before_minutes as i64 * MINUTE_MS,
            after: row.buffer_after_minutes as i64 * MINUTE_MS,
            notice: row.min_notice_minutes as i64 * MINUTE_MS,
            horizon: row.horizon_days as i64 * DAY_MS,
        }
    }

    /// From the settings form (or REST body), every field checked and named when wrong.
    fn parse(s: &BookingSettings) -> AppResult<Self> {
        let title = s.title.trim();
        if title.is_empty() || title.chars().count() > 100 {
            return Err(AppError::invalid("title", "the title is 1 to 100 characters"));
        }
        let mut hours: [Vec<(u32, u32)>; 7] = Default::default();
        for (key, text) in &s.hours {
            let day = day_index(&key.to_ascii_uppercase()).ok_or_else(|| AppError::invalid("hours", format!("{key} is not a weekday (MO … SU)")))?;
            hours[day] = parse_hours(&format!("hours.{}", WEEKDAYS[day].0), text)?;
        }
        let within = |field: &str, value: u32, min: u32, max: u32| -> AppResult<i64> {
            if (min..=max).contains(&value) {
                Ok(value as i64)
            } else {
                Err(AppError::invalid(field, format!("{field} must be from {min} to {max}")))
            }
        };
        Ok(Availability {
            enabled: s.enabled,
            title: title.to_owned(),
            hours,
            zone: zones::parse_zone("time_zone", &s.time_zone)?,
            slot: within("slot_minutes", s.slot_minutes, 5, 480)? * MINUTE_MS,
            before: within("buffer_before_minutes", s.buffer_before_minutes, 0, 240)? * MINUTE_MS,
            after: within("buffer_after_minutes", s.buffer_after_minutes, 0, 240)? * MINUTE_MS,
            notice: within("min_notice_minutes", s.min_notice_minutes, 0, 60 * 24 * 30)? * MINUTE_MS,
            horizon: within("horizon_days", s.horizon_days, 1, 180)? * DAY_MS,
        })
    }

    fn weekly_hours(&self) -> String {
        WEEKDAYS.iter().zip(&self.hours).filter(|(_, h)| !h.is_empty()).map(|((d, _), h)| format!("{d}={}", format_hours(h).replace(' ', ""))).collect::<Vec<_>>().join(";")
    }

    fn settings(&self, url: String) -> BookingSettings {
        BookingSettings {
            enabled: self.enabled,
            title: self.title.clone(),
            hours: WEEKDAYS.iter().zip(&self.hours).map(|((d, _), h)| (d.to_string(), format_hours(h))).collect::<BTreeMap<_, _>>(),
            time_zone: self.zone.to_string(),
            slot_minutes: (self.slot / MINUTE_MS) as u32,
            buffer_before_minutes: (self.before / MINUTE_MS) as u32,
            buffer_after_minutes: (self.after / MINUTE_MS) as u32,
            min_notice_minutes: (self.notice / MINUTE_MS) as u32,
            horizon_days: (self.horizon / DAY_MS) as u32,
            url,
        }
    }

    /// The slots this page offers starting in `[from, to)` that keep clear of `busy`
    /// (with the buffers), at `now`: the weekly hours cut into slots on each local day
    /// (a time the clocks skip is no slot), from `now` plus the notice to the horizon.
    fn slots(&self, busy: &[(i64, i64)], now: i64, from: i64, to: i64) -> Vec<(i64, i64)> {
        let (from, to) = (from.max(now + self.notice), to.min(now + self.horizon));
        let mut out = Vec::new();
        if from >= to {
            return out;
        }
        let (first, last) = (zones::to_local(self.zone, from).date_naive(), zones::to_local(self.zone, to).date_naive());
        let mut day = first;
        while day <= last {
            for &(open, close) in &self.hours[day.weekday().num_days_from_monday() as usize] {
                let mut minute = open as i64;
                while minute * MINUTE_MS + self.slot <= close as i64 * MINUTE_MS {
                    let local = day.and_time(NaiveTime::MIN) + chrono::Duration::minutes(minute);
                    if let Ok(start) = zones::local_to_utc("start", self.zone, local) {
                        let end = start + self.slot;
                        let clear = !busy.iter().any(|&(s, e)| s < end + self.after && e > start - self.before);
                        if start >= from && start < to && clear {
                            out.push((start, end));
                        }
                    }
                    minute += self.slot / MINUTE_MS;
                }
            }
            day += chrono::Duration::days(1);
        }
        out
    }
}

fn page_url(state: &AppState, username: &str) -> String {
    format!("{}/book/{username}", state.settings.public_url.trim_end_matches('/'))
}

async fn availability_of(db: &Db, owner: &Profile) -> AppResult<Availability> {
    Ok(match booking_page::Entity::find_by_id(owner.id).one(&db.conn).await? {
        Some(row) => Availability::from_row(&row),
        None => Availability::default_for(owner),
    })
}

/// The caller's booking page settings (defaults before the first save).
pub async fn settings(state: &AppState, caller: &Caller) -> AppResult<BookingSettings> {
    let owner = find_user(&state.db, caller.username()).await?;
    Ok(availability_of(&state.db, &owner).await?.settings(page_url(state, &owner.username)))
}

/// Saves the caller's booking page.
#[tracing::instrument(skip(state, caller, input), fields(caller = %caller.username()))]
pub async fn save_settings(state: &AppState, caller: &Caller, input: &BookingSettings) -> AppResult<BookingSettings> {
    let a = Availability::parse(input)?;
    let owner_id = caller.id();
    db_write!(state.db, |txn| {
        let row = booking_page::ActiveModel {
            owner_id: Set(owner_id),
            enabled: Set(a.enabled),
            title: Set(a.title.clone()),
            weekly_hours: Set(a.weekly_hours()),
            time_zone: Set(a.zone.to_string()),
            slot_minutes: Set((a.slot / MINUTE_MS) as i32),
            buffer_before_minutes: Set((a.before / MINUTE_MS) as i32),
            buffer_after_minutes: Set((a.after / MINUTE_MS) as i32),
            min_notice_minutes: Set((a.notice / MINUTE_MS) as i32),
            horizon_days: Set((a.horizon / DAY_MS) as i32),
            updated_at: Set(now_ms()),
        };
        let on_conflict = sea_orm::sea_query::OnConflict::column(booking_page::Column::OwnerId)
            .update_columns([
                booking_page::Column::Enabled,
                booking_page::Column::Title,
                booking_page::Column::WeeklyHours,
                booking_page::Column::TimeZone,
                booking_page::Column::SlotMinutes,
                booking_page::Column::BufferBeforeMinutes,
                booking_page::Column::BufferAfterMinutes,
                booking_page::Column::MinNoticeMinutes,
                booking_page::Column::HorizonDays,
                booking_page::Column::UpdatedAt,
            ])
            .to_owned();
        booking_page::Entity::insert(row).on_conflict(on_conflict).exec_without_returning(&*txn).await?;
        Ok(())
    })?;
    Ok(a.settings(page_url(state, caller.username())))
}

/// A published page's owner and rules; a page that is off is not found (as a user
/// without one), so the page tells nobody who has one.
async fn published(db: &Db, username: &str) -> AppResult<(Profile, Availability)> {
    let owner = find_user(db, username).await.map_err(|_| AppError::not_found("booking page"))?;
    let a = availability_of(db, &owner).await?;
    if !a.enabled {
        return Err(AppError::not_found("booking page"));
    }
    Ok((owner, a))
}

fn visitor_zone(zone: Option<&str>, owner: &Availability) -> AppResult<Tz> {
    match zone.map(str::trim).filter(|z| !z.is_empty()) {
        Some(z) => zones::parse_zone("time_zone", z),
        None => Ok(owner.zone),
    }
}

/// The free slots of `username`'s page for the week from `from` (a date in the
/// visitor's zone; default today), shown in the visitor's `zone` (default the owner's).
pub async fn page(db: &Db, username: &str, zone: Option<&str>, from: Option<&str>) -> AppResult<BookingPageView> {
    let (owner, a) = published(db, username).await?;
    let zone = visitor_zone(zone, &a)?;
    let now = now_ms();
    let today = zones::to_local(zone, now).date_naive();
    let last_day = zones::to_local(zone, now + a.horizon).date_naive();
    // Nothing is offered past the horizon: a week asked for beyond it is its last week.
    let first = match from.map(str::trim).filter(|f| !f.is_empty()) {
        Some(f) => zones::parse_date("from", f)?.clamp(today, last_day.max(today)),
        None => today,
    };
    let (start, end) = (zones::start_of_day(zone, first), zones::start_of_day(zone, first + chrono::Duration::days(7)));
    let busy = occurrences::busy(&db.conn, owner.id, start - a.before - a.slot, end + a.after + a.slot).await?;
    let slots = a.slots(&busy, now, start, end);
    let days = (0..7)
        .map(|n| first + chrono::Duration::days(n))
        .map(|date| SlotDay {
            date: date.to_string(),
            label: date.format("%a %-d %b").to_string(),
            slots: slots
                .iter()
                .filter(|(s, _)| zones::to_local(zone, *s).date_naive() == date)
                .map(|&(s, e)| Slot { start: to_rfc3339(s), end: to_rfc3339(e), label: zones::to_local(zone, s).format("%H:%M").to_string() })
                .collect(),
        })
        .collect();
    let week = chrono::Duration::days(7);
    Ok(BookingPageView {
        username: owner.username.clone(),
        owner_name: owner.display_name.clone(),
        title: a.title.clone(),
        slot_minutes: (a.slot / MINUTE_MS) as u32,
        time_zone: zone.to_string(),
        days,
        prev: (first > today).then(|| (first - week).max(today).to_string()),
        next: (first + week <= last_day).then(|| (first + week).to_string()),
    })
}

/// Who books: checked once.
struct Invitee {
    name: String,
    email: String,
    zone: Tz,
}

fn invitee(name: &str, email: &str, zone: Tz) -> AppResult<Invitee> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        return Err(AppError::invalid("name", format!("your name is 1 to {NAME_MAX} characters")));
    }
    // It goes into someone's calendar and meetings list: no control characters, and no
    // direction overrides that would make it read as something else there.
    let hidden = |c: char| c.is_control() || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if name.chars().any(hidden) {
        return Err(AppError::invalid("name", "your name has characters that are not shown"));
    }
    let email = email.trim();
    let plausible = email.len() <= EMAIL_MAX
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'));
    if !plausible {
        return Err(AppError::invalid("email", "give an e-mail address like ada@example.com"));
    }
    Ok(Invitee { name: name.to_owned(), email: email.to_owned(), zone })
}

fn meeting_of(state: &AppState, b: &booking::Model, title: &str, host: &str) -> BookedMeeting {
    BookedMeeting {
        event_uri: format!("{}/bookings/{}", state.settings.public_url.trim_end_matches('/'), b.id),
        name: title.to_owned(),
        invitee_name: b.invitee_name.clone(),
        invitee_email: b.invitee_email.clone(),
        invitee_zone: b.invitee_zone.clone(),
        host: host.to_owned(),
        start: b.start_at,
        end: b.end_at,
    }
}

fn limit(state: &AppState, client: Option<std::net::IpAddr>) -> AppResult<()> {
    state.part::<BookingParts>().limiter.take(&crate::platform::guards::address_key(client), "bookings from this address")
}

/// Books the slot starting at `start` on `username`'s page for a visitor (anyone: the
/// page is public, so each client address may book only a few times a minute). The slot
/// must be one the page offers and still free when the booking's transaction holds the
/// page's row: of two visitors racing for it, one gets it and the other a 409.
#[tracing::instrument(skip(state, name, email), fields(owner = %username))]
pub async fn book(state: &AppState, client: Option<std::net::IpAddr>, username: &str, start: &str, name: &str, email: &str, zone: Option<&str>) -> AppResult<Booked> {
    limit(state, client)?;
    let (owner, a) = published(&state.db, username).await?;
    let who = invitee(name, email, visitor_zone(zone, &a)?)?;
    let start = zones::parse_instant("start", start)?;
    let db = &state.db;
    let token = random_token(24);
    let outlet = state.part::<BookingParts>().meetings.clone();
    let (b, title) = db_write!(db, |txn| {
        // Bookings for one calendar queue here (the write gate does it on SQLite).
        let row = for_update(booking_page::Entity::find_by_id(owner.id), db.backend()).one(&*txn).await?;
        let a = row.as_ref().map(Availability::from_row).filter(|a| a.enabled).ok_or_else(|| AppError::not_found("booking page"))?;
        let now = now_ms();
        let end = start + a.slot;
        if !a.slots(&[], now, start, start + 1).contains(&(start, end)) {
            return Err(AppError::invalid("start", "this page offers no slot at that time"));
        }
        let busy = occurrences::busy(&*txn, owner.id, start - a.before, end + a.after).await?;
        if a.slots(&busy, now, start, start + 1).is_empty() {
            return Err(AppError::conflict("slot_taken", "that time was just taken; pick another").on_field("start"));
        }
        let held = booking::Entity::find()
            .filter(booking::Column::OwnerId.eq(owner.id))
            .filter(booking::Column::StartAt.gt(now))
            .filter(booking::Column::Status.eq(BookingStatus::Booked))
            .filter(booking::Column::InviteeEmail.eq(who.email.as_str()))
            .count(&*txn)
            .await?;
        if held >= PER_EMAIL {
            return Err(AppError::conflict("too_many_bookings", format!("{} already holds {PER_EMAIL} upcoming bookings here", who.email)).on_field("email"));
        }
        let fields = Fields {
            title: format!("{}: {}", a.title, who.name).chars().take(TITLE_MAX).collect(),
            description: format!("Booked on the booking page by {} <{}> ({}).", who.name, who.email, who.zone),
            location: String::new(),
            start_at: start,
            end_at: end,
            all_day: false,
            time_zone: a.zone.to_string(),
            recurrence: None,
        };
        let e = insert(&txn, owner.id, &settle(fields, false)?, None, None).await?;
        let b = booking::Entity::insert(booking::ActiveModel {
            owner_id: Set(owner.id),
            event_id: Set(Some(e.id)),
            start_at: Set(start),
            end_at: Set(end),
            invitee_name: Set(who.name.clone()),
            invitee_email: Set(who.email.clone()),
            invitee_zone: Set(who.zone.to_string()),
            cancel_hash: Set(sha256_hex(&token)),
            status: Set(BookingStatus::Booked),
            created_at: Set(now),
            canceled_at: Set(None),
            ..Default::default()
        })
        .exec_with_returning(&*txn)
        .await?;
        outlet.booked(&txn, &meeting_of(state, &b, &a.title, &owner.username)).await?;
        announce(&txn, "event:created", &occurrences::Item::single(e), &owner.username).await?;
        Ok((b, a.title))
    })?;
    let local = |ms: i64| zones::to_local(who.zone, ms);
    Ok(Booked {
        id: b.id,
        title,
        start: to_rfc3339(b.start_at),
        end: to_rfc3339(b.end_at),
        when: format!("{}–{} ({})", local(b.start_at).format("%a %-d %b %Y, %H:%M"), local(b.end_at).format("%H:%M"), who.zone),
        cancel_url: format!("{}/book/cancel/{token}", state.settings.public_url.trim_end_matches('/')),
    })
}

/// Cancels the booking its secret link names: the event leaves the owner's calendar and
/// the meeting is canceled (published as `meeting:canceled`). Cancelling again changes
/// nothing.
#[tracing::instrument(skip_all)]
pub async fn cancel(state: &AppState, client: Option<std::net::IpAddr>, token: &str) -> AppResult<()> {
    limit(state, client)?;
    let db = &state.db;
    let by_link = booking::Entity::find().filter(booking::Column::CancelHash.eq(sha256_hex(token.trim())));
    db_write!(db, |txn| {
        // The event first, then the booking: the order an owner's deletion of the event
        // takes them in, so the two never wait on each other.
        let seen = by_link.clone().one(&*txn).await?.ok_or_else(|| AppError::not_found("booking"))?;
        if let Some(id) = seen.event_id {
            for_update(event::Entity::find_by_id(id), db.backend()).one(&*txn).await?;
        }
        let found = for_update(by_link.clone(), db.backend()).one(&*txn).await?;
        let b = found.ok_or_else(|| AppError::not_found("booking"))?;
        if b.status == BookingStatus::Canceled {
            return Ok(());
        }
        let owner = crate::accounts::service::profile_by_id(&*txn, b.owner_id).await?.ok_or_else(|| AppError::not_found("booking"))?;
        // The booking's own event, unless its owner has since made it something else
        // (a series): that is theirs to keep.
        let event = match b.event_id {
            Some(id) => event::Entity::find_by_id(id).one(&*txn).await?.filter(|e| !e.recurring && e.series_id.is_none()),
            None => None,
        };
        if let Some(e) = event {
            event::Entity::delete_by_id(e.id).exec(&*txn).await?;
            announce(&txn, "event:deleted", &occurrences::Item::single(e), &owner.username).await?;
        }
        mark_canceled(state, &txn, b, &owner.username, Canceler::Invitee).await
    })
}

/// Cancels the booking whose event its owner deleted from the calendar (in the deletion's
/// transaction): the meeting is canceled in the feed and published as `meeting:canceled`,
/// as if the visitor had used the link, so the feed shows no meeting the host dropped and
/// the visitor's address holds one booking fewer. The link then answers as for any
/// canceled booking.
pub(super) async fn event_deleted(state: &AppState, txn: &WriteTxn, event_id: i64, owner: &str) -> AppResult<()> {
    // By `ix_bookings_event`; at most one booking names an event. A meeting that has
    // begun happened (or not) as booked: tidying it off the calendar cancels nothing.
    let find = booking::Entity::find()
        .filter(booking::Column::EventId.eq(event_id))
        .filter(booking::Column::Status.eq(BookingStatus::Booked))
        .filter(booking::Column::StartAt.gt(now_ms()));
    let Some(b) = for_update(find, state.db.backend()).one(&**txn).await? else { return Ok(()) };
    mark_canceled(state, txn, b, owner, Canceler::Host).await
}

/// A booking canceled: the meeting feed told who did it (under the page's title), the
/// row marked, its event forgotten.
async fn mark_canceled(state: &AppState, txn: &WriteTxn, b: booking::Model, owner: &str, by: Canceler) -> AppResult<()> {
    let title = booking_page::Entity::find_by_id(b.owner_id).one(&**txn).await?.map(|p| p.title).unwrap_or_default();
    state.part::<BookingParts>().meetings.canceled(txn, &meeting_of(state, &b, &title, owner), by).await?;
    let mut row: booking::ActiveModel = b.into();
    row.status = Set(BookingStatus::Canceled);
    row.canceled_at = Set(Some(now_ms()));
    row.event_id = Set(None);
    booking::Entity::update(row).exec(&**txn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(zone: Tz, s: &str) -> i64 {
        zones::local_to_utc("t", zone, chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()).unwrap()
    }

    #[test]
    fn slots_are_the_weekly_hours_less_busy_times_buffers_and_notice() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let mut a = Availability { zone: paris, slot: 60 * MINUTE_MS, ..Availability::default_for(&Profile { id: 1, username: "o".into(), display_name: "O".into(), time_zone: "UTC".into(), calendar_shared: false }) };
        a.hours[0] = parse_hours("h", "09:00-12:00").unwrap(); // Monday
        a.before = 15 * MINUTE_MS;
        a.notice = 0;
        let monday = |t: &str| at(paris, &format!("2026-12-07T{t}"));
        let all = a.slots(&[], monday("00:00"), monday("00:00"), monday("23:59"));
        assert_eq!(all, [(monday("09:00"), monday("10:00")), (monday("10:00"), monday("11:00")), (monday("11:00"), monday("12:00"))]);
        // Busy 11:00–11:30 takes the 11:00 slot, and with the 15-minute buffer before it…
        // nothing more; busy until 10:05 takes 10:00 (buffer) too.
        let busy = [(monday("09:30"), monday("10:05")), (monday("11:00"), monday("11:30"))];
        assert!(a.slots(&busy, monday("00:00"), monday("00:00"), monday("23:59")).is_empty());
        let busy = [(monday("11:10"), monday("11:30"))];
        assert_eq!(a.slots(&busy, monday("00:00"), monday("00:00"), monday("23:59")).len(), 2);
        // Notice: nothing starting within the next two hours.
        a.notice = 120 * MINUTE_MS;
        assert_eq!(a.slots(&[], monday("08:30"), monday("00:00"), monday("23:59")), [(monday("11:00"), monday("12:00"))]);
        // The horizon: nothing beyond it.
        a.horizon = DAY_MS;
        assert!(a.slots(&[], monday("00:00") - 7 * DAY_MS, monday("00:00"), monday("23:59")).is_empty());
    }

    #[test]
    fn hours_are_checked_and_kept_in_order() {
        assert_eq!(parse_hours("h", "13:00-17:00, 09:00-12:00").unwrap(), [(540, 720), (780, 1020)]);
        assert_eq!(format_hours(&parse_hours("h", "09:00-24:00").unwrap()), "09:00-24:00");
        for bad in ["9-5", "17:00-09:00", "09:00-12:00, 11:00-13:00", "25:00-26:00"] {
            assert_eq!(parse_hours("hours.MO", bad).unwrap_err().field.as_deref(), Some("hours.MO"), "{bad}");
        }
        assert!(invitee("Ada", "ada@example.com", Tz::UTC).is_ok());
        for email in ["ada", "ada@localhost", "a b@example.com", "@example.com", "ada@.com"] {
            assert_eq!(invitee("Ada", email, Tz::UTC).err().and_then(|e| e.field).as_deref(), Some("email"), "{email}");
        }
    }
}
