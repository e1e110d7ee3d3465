//! Importing an `.ics` file into one's own calendar: each event becomes an event of this
//! calendar (a repeating one a series, with its skipped occurrences; a changed
//! occurrence a changed occurrence of it), published like any other. Importing the same
//! file again adds nothing twice: an imported event's UID is derived from the calendar
//! and the file's own UID, and looked up before it is written.

use super::domain::ImportReport;
use super::ical_read::{self, FeedEvent, Warnings};
use super::occurrences::Item;
use super::recurrence::encode_exceptions;
use super::recurrence::MAX_EXCEPTIONS;
use super::service::{announce, find_user, insert_as, settle, Fields, Settled};
use super::store::event;
use super::subscriptions::{check_size, parse_off_thread, take_file};
use crate::accounts::Caller;
use crate::db_write;
use crate::error::{AppError, AppResult};
use crate::platform::secrets::sha256_hex;
use crate::platform::state::AppState;
use chrono_tz::Tz;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use std::collections::HashMap;

/// Events one import may add (a series and each changed occurrence count once).
pub const MAX_IMPORT: usize = 1000;
/// What an event read without an end lasts here (this calendar's events take time).
const NO_END_MS: i64 = 15 * 60_000;

/// Imports `text` into the caller's own calendar.
#[tracing::instrument(skip(state, caller, text), fields(caller = %caller.username(), bytes = text.len()))]
pub async fn import(state: &AppState, caller: &Caller, text: String) -> AppResult<ImportReport> {
    check_size(&text)?;
    take_file(state, caller)?;
    let owner = find_user(&state.db, caller.username()).await?;
    let zone: Tz = owner.time_zone.parse().unwrap_or(Tz::UTC);
    let feed = parse_off_thread(move || ical_read::read(&text, zone)).await.map_err(|why| AppError::invalid("file", why))?;
    let mut warnings = feed.warnings.clone();
    let mut wanted: Vec<&FeedEvent> = feed.events.iter().filter(|e| !e.cancelled).collect();
    if wanted.len() > MAX_IMPORT {
        return Err(AppError::invalid("file", format!("the file has {} events; import at most {MAX_IMPORT} at once", wanted.len())));
    }
    // Series before the occurrences changed in them, which name their series' row.
    wanted.sort_by_key(|e| e.replaces.is_some());
    let plans: Vec<Plan> = wanted.iter().filter_map(|e| plan(owner.id, e, &feed.events, &mut warnings)).collect();
    let (report, skipped) = db_write!(state.db, |txn| {
        let (mut created, mut already, mut skipped) = (0u32, 0u32, Vec::new());
        // The rows of the series written or found, by the file's UID.
        let mut series_ids: HashMap<&str, (i64, bool)> = HashMap::new();
        for p in &plans {
            if let Some(existing) = event::Entity::find().filter(event::Column::Uid.eq(p.uid.clone())).one(&*txn).await? {
                if p.replaces.is_none() {
                    already += 1;
                    // (A second VEVENT with the UID of one just written is not "before".)
                    series_ids.entry(&p.source_uid).or_insert((existing.id, false));
                }
                continue;
            }
            let occurrence_of = match (p.replaces, series_ids.get(p.source_uid.as_str())) {
                (Some(at), Some(&(series, true))) => Some((series, at)),
                // A series imported before: its exceptions are as they were then.
                (Some(_), Some(&(_, false))) => {
                    skipped.push(format!("{:?}: a changed occurrence of a series imported before is left out", p.settled.f.title));
                    continue;
                }
                // No series to belong to (it was left out, or could not repeat): alone.
                _ => None,
            };
            let e = insert_as(&txn, owner.id, p.uid.clone(), &p.settled, occurrence_of, p.exceptions.clone())
                .await
                // The one refusal left for a checked event: the calendar's running series are
                // at their limit. It is the file's doing.
                .map_err(|e| if e.field.as_deref() == Some(super::recurrence::FIELD) { e.on_field("file") } else { e })?;
            if p.replaces.is_none() {
                created += 1;
                if p.settled.rule.is_some() {
                    series_ids.insert(&p.source_uid, (e.id, true));
                }
            }
            announce(&txn, "event:created", &Item::single(e), &owner.username).await?;
        }
        Ok((ImportReport { created, already_imported: already, warnings: None }, skipped))
    })?;
    skipped.into_iter().for_each(|w| warnings.add(w));
    Ok(ImportReport { warnings: warnings.summary(), ..report })
}

/// One event as it will be written.
struct Plan {
    uid: String,
    source_uid: String,
    settled: Settled,
    exceptions: Option<String>,
    replaces: Option<i64>,
}

/// Reads a file's event as this calendar's fields; None (with a warning) for one it
/// cannot hold.
fn plan(owner_id: i64, e: &FeedEvent, all: &[FeedEvent], warnings: &mut Warnings) -> Option<Plan> {
    let end = if e.end > e.start { e.end } else { e.start + NO_END_MS };
    let fields = |recurrence: Option<String>| Fields {
        title: e.title.clone(),
        description: e.description.clone(),
        location: e.location.clone(),
        start_at: e.start,
        end_at: end,
        all_day: e.all_day,
        time_zone: e.zone.name().to_owned(),
        recurrence,
    };
    let rule = e.rule.clone().filter(|_| e.replaces.is_none());
    let settled = match settle(fields(rule.clone()), true) {
        Ok(s) => s,
        Err(err) if rule.is_some() => {
            warnings.add(format!("{:?} repeats by a rule this calendar cannot hold ({}); only its first occurrence was imported", e.title, err.message));
            settle(fields(None), true).ok()?
        }
        Err(err) => {
            warnings.add(format!("{:?} left out: {}", e.title, err.message));
            return None;
        }
    };
    let exceptions = settled.rule.as_ref().and_then(|_| {
        // The starts changed occurrences replace are always kept (else both would show);
        // of the plain skipped starts, as many as there is room for.
        let mut replaced: Vec<i64> = all.iter().filter(|o| o.uid == e.uid).filter_map(|o| o.replaces).collect();
        replaced.sort_unstable();
        replaced.dedup();
        let mut skipped: Vec<i64> = e.skipped.iter().copied().filter(|s| replaced.binary_search(s).is_err()).collect();
        skipped.sort_unstable();
        skipped.dedup();
        let room = MAX_EXCEPTIONS.saturating_sub(replaced.len());
        if skipped.len() > room {
            warnings.add(format!("{:?} skips more than {MAX_EXCEPTIONS} occurrences; only the first {room} skipped dates are kept", e.title));
            skipped.truncate(room);
        }
        skipped.extend(replaced);
        skipped.sort_unstable();
        encode_exceptions(&skipped)
    });
    let source_uid = if e.uid.is_empty() { format!("{}/{}", e.title, e.start) } else { e.uid.clone() };
    let key = format!("{owner_id}\n{source_uid}\n{}", e.replaces.map(|r| r.to_string()).unwrap_or_default());
    Some(Plan { uid: format!("import-{}@switchboard", &sha256_hex(&key)[..32]), source_uid, settled, exceptions, replaces: e.replaces })
}
