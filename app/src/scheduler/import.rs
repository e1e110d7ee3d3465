//! Importing an `.ics` file into one's own calendar: each event becomes an event of this
//! calendar (a repeating one a series, with its skipped occurrences; a changed
//! occurrence a changed occurrence of it), published like any other. Importing the same
//! file again adds nothing twice: an imported event's UID is derived from the calendar
//! and the file's own UID, and looked up before it is written.

use super::domain::ImportReport;
use super::ical_read::{self, FeedEvent, Warnings};
use super::occurrences::Item;
use super::recurrence::encode_exceptions;
use super::service::{announce, find_user, insert_as, settle, Fields, Settled};
use super::store::event;
use super::subscriptions::MAX_UPLOAD_BYTES;
use crate::accounts::Caller;
use crate::db_write;
use crate::error::{AppError, AppResult};
use crate::platform::secrets::sha256_hex;
use crate::platform::state::AppState;
use chrono_tz::Tz;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

/// Events one import may add (a series counts once).
pub const MAX_IMPORT: usize = 1000;
/// What an event read without an end lasts here (this calendar's events take time).
const NO_END_MS: i64 = 15 * 60_000;

/// Imports `text` into the caller's own calendar.
#[tracing::instrument(skip(state, caller, text), fields(caller = %caller.username(), bytes = text.len()))]
pub async fn import(state: &AppState, caller: &Caller, text: String) -> AppResult<ImportReport> {
    if text.len() > MAX_UPLOAD_BYTES {
        return Err(AppError::invalid("file", format!("the file is larger than {} KiB", MAX_UPLOAD_BYTES >> 10)));
    }
    let owner = find_user(&state.db, caller.username()).await?;
    let zone: Tz = owner.time_zone.parse().unwrap_or(Tz::UTC);
    let feed = tokio::task::spawn_blocking(move || ical_read::read(&text, zone))
        .await
        .map_err(AppError::internal_because)?
        .map_err(|why| AppError::invalid("file", why))?;
    let mut warnings = feed.warnings.clone();
    let mut wanted: Vec<&FeedEvent> = feed.events.iter().filter(|e| !e.cancelled).collect();
    // Series before the occurrences changed in them, which name their series' row.
    wanted.sort_by_key(|e| e.replaces.is_some());
    let series_count = wanted.iter().filter(|e| e.replaces.is_none()).count();
    if series_count > MAX_IMPORT {
        return Err(AppError::invalid("file", format!("the file has {series_count} events; import at most {MAX_IMPORT} at once")));
    }
    let plans: Vec<Plan> = wanted.iter().filter_map(|e| plan(owner.id, e, &feed.events, &mut warnings)).collect();
    let report = db_write!(state.db, |txn| {
        let (mut created, mut already) = (0u32, 0u32);
        let mut series_ids: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        for p in &plans {
            if let Some(existing) = event::Entity::find().filter(event::Column::Uid.eq(p.uid.clone())).one(&*txn).await? {
                if existing.owner_id == owner.id {
                    already += u32::from(p.replaces.is_none());
                    series_ids.insert(p.source_uid.clone(), existing.id);
                    continue;
                }
            }
            let occurrence_of = match p.replaces {
                Some(at) => match series_ids.get(&p.source_uid) {
                    Some(series) => Some((*series, at)),
                    // Its series was not imported (left out): it stands alone.
                    None => None,
                },
                None => None,
            };
            let e = insert_as(&txn, owner.id, p.uid.clone(), &p.settled, occurrence_of, p.exceptions.clone()).await?;
            if p.replaces.is_none() {
                created += 1;
                series_ids.insert(p.source_uid.clone(), e.id);
            }
            announce(&txn, "event:created", &Item::single(e), &owner.username).await?;
        }
        Ok(ImportReport { created, already_imported: already, warnings: None })
    })?;
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
        let mut skipped = e.skipped.clone();
        skipped.extend(all.iter().filter(|o| o.uid == e.uid && o.replaces.is_some()).filter_map(|o| o.replaces));
        skipped.sort_unstable();
        skipped.dedup();
        encode_exceptions(&skipped)
    });
    let source_uid = if e.uid.is_empty() { format!("{}/{}", e.title, e.start) } else { e.uid.clone() };
    let key = format!("{owner_id}\n{source_uid}\n{}", e.replaces.map(|r| r.to_string()).unwrap_or_default());
    Some(Plan { uid: format!("import-{}@switchboard", &sha256_hex(&key)[..32]), source_uid, settled, exceptions, replaces: e.replaces })
}
