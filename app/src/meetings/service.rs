//! Meetings use cases: webhook intake (verify → store raw → answer; fold right after), the spool that keeps
//! deliveries safe while the database is down, folding into one row per meeting, and
//! the listing.

use crate::db_write;
use super::settings::MeetingsSettings;
use super::calendly::{self, Envelope, Fact, InviteeFacts};
use super::domain::*;
use super::store::{inbox, meeting};
use crate::error::{AppError, AppResult, OrInternal};
use crate::platform::changes;
use crate::platform::db::{for_update, is_unique_violation, skip_locked, Db, WriteTxn};
use crate::platform::state::AppState;
use crate::platform::time::{now_ms, parse_rfc3339};
use bytes::Bytes;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

pub const SOURCE: &str = "calendly";
pub const CHANNEL: &str = "meetings/";
const SPOOL_PREFIX: &str = "spool/calendly/";
/// How long intake waits for the database before spooling instead.
const STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// What intake did with a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Intake {
    /// Stored; the [`Folder`] folds it into its meeting a moment later.
    Accepted(i64),
    /// The same (event, invitee) was stored before; nothing changed.
    Duplicate,
    /// The database could not take it; it is safe in the object store until replayed.
    Spooled,
}

/// The folder's in-process wake-up: fired when a delivery is stored.
pub const FOLDER_WAKER: &str = "meetings.folder";
/// Deliveries one folding transaction takes.
const FOLD_BATCH: u64 = 100;

/// Who hands a delivery to [`intake`]: a sender on the network, counted against the
/// per-address limit, or the app itself (the demo's samples and test bookings, already
/// bounded by their own limiter).
#[derive(Clone, Copy, Debug)]
pub enum Sender {
    Address(Option<std::net::IpAddr>),
    App,
}

/// Webhook deliveries per client address (`SB_WEBHOOK_RATE_PER_MIN`).
#[derive(Clone)]
pub struct WebhookLimiter(pub crate::platform::rate_limit::RateLimiter);

/// Refuses a delivery when its sender posted too many recently: a flood, forged or
/// replayed, is turned away before any signature is computed or anything stored. The
/// sender retries later, as Calendly does on any non-2xx. Counted per address as the
/// other limits count (an IPv6 sender per /64, which it could otherwise rotate within).
fn check_intake_rate(state: &AppState, sender: Sender) -> AppResult<()> {
    match sender {
        Sender::Address(client) => state
            .part::<WebhookLimiter>()
            .0
            .take(&crate::platform::guards::address_key(client), "webhook deliveries from this address"),
        Sender::App => Ok(()),
    }
}

/// The live channel of the meetings list: every signed-in member follows it.
pub fn events_channel(_caller: &crate::accounts::Caller) -> String {
    CHANNEL.to_owned()
}

/// Verifies, parses and stores a delivery, and answers: once the raw body is durable —
/// in the database, or in the object store when the database is down — it is accepted.
/// Folding it into its meeting (and publishing the change) is the [`Folder`]'s work,
/// right after, in batches; the sender does not wait for it.
#[tracing::instrument(skip_all, fields(event))]
pub async fn intake(state: &AppState, sender: Sender, signature: Option<&str>, body: Bytes) -> AppResult<Intake> {
    check_intake_rate(state, sender)?;
    let intake = state.settings.part::<MeetingsSettings>();
    let key = intake
        .signing_key
        .as_deref()
        .ok_or_else(|| AppError::unavailable("webhook intake is not configured: set CALENDLY_WEBHOOK_SIGNING_KEY"))?;
    calendly::verify(signature, &body, key, now_ms() / 1000, intake.tolerance.as_secs() as i64)?;
    let envelope = calendly::parse_envelope(&body)?;
    calendly::facts(&envelope)?; // refuse malformed known events before storing them
    tracing::Span::current().record("event", envelope.event.as_str());
    let received_at = now_ms();
    // One autocommit insert, not a shared transaction: batching deliveries (group commit,
    // as chat posts and publishes do) was measured at half this rate on both engines
    // (MariaDB 2,202 against 4,340 req/s at 32 connections, same machine, same day).
    let stored = tokio::time::timeout(STORE_TIMEOUT, store_raw(&state.db.conn, raw_row(&envelope, &body, received_at))).await;
    match stored {
        Ok(Ok(Some(id))) => {
            state.db.waker(FOLDER_WAKER).notify_one();
            Ok(Intake::Accepted(id))
        }
        Ok(Ok(None)) => Ok(Intake::Duplicate),
        Ok(Err(e)) => spool(state, &body, received_at, &e.message).await,
        Err(_) => spool(state, &body, received_at, "timed out").await,
    }
}

/// Folds stored deliveries into their meetings in the background: at once when this
/// process stored one, and through the periodic backstop job for anything left (a
/// crash, another process's deliveries when it died).
pub struct Folder {
    state: AppState,
}

impl Folder {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let wake = self.state.db.waker(FOLDER_WAKER);
        while !*shutdown.borrow() {
            match fold_pending(&self.state, FOLD_BATCH).await {
                Ok(n) if n == FOLD_BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e.message, "folding deliveries failed; will retry"),
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// The inbox row of a verified delivery, as it is stored raw.
fn raw_row(env: &Envelope, body: &[u8], received_at: i64) -> inbox::ActiveModel {
    inbox::ActiveModel {
        source: Set(SOURCE.into()),
        event: Set(env.event.chars().take(64).collect()),
        dedupe_key: Set(calendly::dedupe_key(env, body)),
        body: Set(String::from_utf8_lossy(body).into_owned()),
        received_at: Set(received_at),
        processed_at: Set(None),
        error: Set(None),
        ..Default::default()
    }
}

/// Stores one raw delivery; `None` when its dedupe key is already there.
async fn store_raw<C: ConnectionTrait>(conn: &C, row: inbox::ActiveModel) -> AppResult<Option<i64>> {
    match inbox::Entity::insert(row).exec(conn).await {
        Ok(res) => Ok(Some(res.last_insert_id)),
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[derive(Serialize, Deserialize)]
struct Spooled {
    received_at: i64,
    body: String,
}

async fn spool(state: &AppState, body: &[u8], received_at: i64, why: &str) -> AppResult<Intake> {
    let key = format!("{SPOOL_PREFIX}{received_at:013}-{:016x}.json", rand::random::<u64>());
    let record = Spooled { received_at, body: String::from_utf8_lossy(body).into_owned() };
    let bytes = serde_json::to_vec(&record).or_internal("encoding a webhook for the spool")?;
    match state.store.put(&key, bytes.into()).await {
        Ok(()) => {
            tracing::warn!(%key, why, "database unavailable: webhook spooled to the object store");
            metrics::counter!("meetings_webhooks_spooled_total").increment(1);
            Ok(Intake::Spooled)
        }
        Err(e) => {
            tracing::error!(error = %e, why, "neither the database nor the object store took the webhook");
            Err(AppError::unavailable("cannot store the delivery right now; retry later"))
        }
    }
}

/// Moves spooled deliveries into the database (deduplicated like any other), oldest
/// first, deleting each spool object once stored. Returns how many were replayed.
#[tracing::instrument(skip(state))]
pub async fn replay_spool(state: &AppState) -> AppResult<u64> {
    let (mut replayed, mut left) = (0, 0);
    let mut after: Option<String> = None;
    loop {
        // Paged on past what is left in place, so unreadable objects never stall the rest.
        let keys = state.store.list(SPOOL_PREFIX, after.as_deref(), 100).await?;
        for key in &keys {
            let Some(bytes) = state.store.get(key).await? else { continue };
            // Signature and shape were checked when it was accepted; what does not parse
            // now is kept for a person to look at.
            let parsed = serde_json::from_slice::<Spooled>(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|r| calendly::parse_envelope(r.body.as_bytes()).map(|env| (r, env)).map_err(|e| e.message));
            let (record, env) = match parsed {
                Ok(parsed) => parsed,
                Err(e) => {
                    tracing::error!(%key, error = %e, "unreadable spool object left in place");
                    left += 1;
                    continue;
                }
            };
            if store_raw(&state.db.conn, raw_row(&env, record.body.as_bytes(), record.received_at)).await?.is_some() {
                state.db.waker(FOLDER_WAKER).notify_one();
            }
            state.store.delete(key).await?;
            replayed += 1;
        }
        if keys.len() < 100 {
            metrics::gauge!("meetings_spool_waiting").set(left as f64);
            return Ok(replayed);
        }
        after = keys.last().cloned();
    }
}

/// Folds up to `limit` stored deliveries that were not folded yet, oldest first, in one
/// transaction (rows another process is folding are skipped). Should one of them fail,
/// each is folded on its own so the others go through. Returns how many it took.
#[tracing::instrument(skip(state))]
pub async fn fold_pending(state: &AppState, limit: u64) -> AppResult<u64> {
    let db = &state.db;
    let batch = db_write!(db, |txn| {
        let unprocessed = inbox::Entity::find()
            .filter(inbox::Column::ProcessedAt.is_null())
            .order_by_asc(inbox::Column::Id)
            .limit(limit);
        let rows = skip_locked(unprocessed, db.backend()).all(&*txn).await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        for row in &rows {
            apply(&txn, row).await?;
        }
        Ok(ids)
    });
    match batch {
        Ok(ids) => Ok(ids.len() as u64),
        Err(e) => {
            tracing::warn!(error = %e.message, "folding a batch failed; folding its deliveries one by one");
            let ids: Vec<i64> = inbox::Entity::find()
                .select_only()
                .column(inbox::Column::Id)
                .filter(inbox::Column::ProcessedAt.is_null())
                .order_by_asc(inbox::Column::Id)
                .limit(limit)
                .into_tuple()
                .all(&db.conn)
                .await?;
            let mut folded = 0;
            for id in &ids {
                match fold(state, *id).await {
                    Ok(()) => folded += 1,
                    // The delivery itself is at fault (it no longer parses): keep it, say
                    // why, and take it out of the queue so it does not hold up the rest.
                    Err(e) if e.status < 500 => {
                        tracing::error!(id, error = %e.message, "a stored delivery cannot be folded; marked with its error");
                        set_aside(db, *id, &e.message).await?;
                    }
                    Err(e) => tracing::warn!(id, error = %e.message, "folding failed; will retry"),
                }
            }
            // Only what was folded counts: a row that keeps failing must not make the
            // folder spin on it.
            Ok(folded)
        }
    }
}

/// Marks a delivery that cannot be folded as processed, with the reason.
async fn set_aside(db: &Db, inbox_id: i64, why: &str) -> AppResult<()> {
    inbox::Entity::update_many()
        .col_expr(inbox::Column::ProcessedAt, Expr::value(now_ms()))
        .col_expr(inbox::Column::Error, Expr::value(why.chars().take(500).collect::<String>()))
        .filter(inbox::Column::Id.eq(inbox_id))
        .filter(inbox::Column::ProcessedAt.is_null())
        .exec(&db.conn)
        .await?;
    Ok(())
}

/// Applies one stored delivery to the meetings, once.
#[tracing::instrument(skip(state))]
pub async fn fold(state: &AppState, inbox_id: i64) -> AppResult<()> {
    let db = &state.db;
    db_write!(db, |txn| {
        let row = for_update(inbox::Entity::find_by_id(inbox_id), db.backend()).one(&*txn).await?;
        if let Some(row) = row.filter(|r| r.processed_at.is_none()) {
            apply(&txn, &row).await?;
        }
        Ok(())
    })
}

/// Folds one locked, unprocessed delivery and marks it processed (with why it changed
/// nothing, if so).
async fn apply(txn: &WriteTxn, row: &inbox::Model) -> AppResult<()> {
    let env = calendly::parse_envelope(row.body.as_bytes())?;
    let error = match calendly::facts(&env)? {
        Fact::Invitee(facts) => apply_invitee(txn, &facts).await?,
        Fact::NoShow { invitee_uri, no_show } => apply_no_show(&**txn, &invitee_uri, no_show, env.created_at).await?,
        Fact::Unknown => Some(format!("event {:?} is stored but not folded", env.event)),
    };
    inbox::Entity::update_many()
        .col_expr(inbox::Column::ProcessedAt, Expr::value(now_ms()))
        .col_expr(inbox::Column::Error, Expr::value(error))
        .filter(inbox::Column::Id.eq(row.id))
        .exec(&**txn)
        .await?;
    Ok(())
}

/// A booking made on this app's own booking pages, taken into the feed as a Calendly
/// booking is folded — the same row, live change and `meeting:*` publication — in the
/// booking's own transaction (start-up connects the scheduler's bookings here).
pub async fn record_booking(txn: &WriteTxn, facts: &InviteeFacts) -> AppResult<()> {
    apply_invitee(txn, facts).await.map(|_| ())
}

fn status_of(f: &InviteeFacts) -> MeetingStatus {
    match (f.canceled, f.rescheduled) {
        (false, _) => MeetingStatus::Scheduled,
        (true, true) => MeetingStatus::Rescheduled,
        (true, false) => MeetingStatus::Canceled,
    }
}

/// Merges an invitee fact into its meeting. Commutative: a cancellation is final, so a
/// cancel that arrives before its create still ends canceled, and duplicates change
/// nothing.
async fn apply_invitee(txn: &WriteTxn, f: &InviteeFacts) -> AppResult<Option<String>> {
    let conn = &**txn;
    let backend = conn.get_database_backend();
    let now = now_ms();
    let existing = for_update(meeting::Entity::find().filter(meeting::Column::EventUri.eq(&f.event_uri)), backend).one(conn).await?;
    let rescheduled_to = f.new_invitee.as_deref().filter(|_| f.canceled).and_then(calendly::event_of_invitee);
    let rescheduled_from = f.old_invitee.as_deref().filter(|_| !f.canceled).and_then(calendly::event_of_invitee);
    let (before, mut row): (Option<MeetingStatus>, meeting::ActiveModel) = match existing {
        Some(m) => (Some(m.status), m.into()),
        None => (
            None,
            meeting::ActiveModel {
                event_uri: Set(f.event_uri.clone()),
                status: Set(MeetingStatus::Scheduled),
                no_show: Set(false),
                no_show_at: Set(None),
                canceled_by: Set(None),
                cancel_reason: Set(None),
                canceler_type: Set(None),
                rescheduled_to: Set(None),
                rescheduled_from: Set(None),
                created_at: Set(now),
                ..Default::default()
            },
        ),
    };
    // Both events carry the scheduled event's details; they never change for one event.
    row.name = Set(f.event_name.chars().take(255).collect());
    row.invitee_uri = Set(f.invitee_uri.chars().take(191).collect());
    row.invitee_name = Set(f.name.chars().take(255).collect());
    row.invitee_email = Set(f.email.chars().take(255).collect());
    row.invitee_timezone = Set(f.timezone.chars().take(64).collect());
    row.host_email = Set(f.host_email.chars().take(191).collect());
    row.start_time = Set(f.start_time);
    row.end_time = Set(f.end_time);
    row.location = Set(f.location.chars().take(500).collect());
    row.updated_at = Set(now);
    let after = match before {
        Some(final_status) if final_status.is_final() && !f.canceled => final_status,
        _ => status_of(f),
    };
    row.status = Set(after);
    if f.canceled {
        row.canceled_by = Set(f.canceled_by.clone());
        row.cancel_reason = Set(f.cancel_reason.clone());
        row.canceler_type = Set(f.canceler_type.clone());
        if rescheduled_to.is_some() {
            row.rescheduled_to = Set(rescheduled_to);
        }
    }
    if rescheduled_from.is_some() {
        row.rescheduled_from = Set(rescheduled_from);
    }
    let saved = match before {
        Some(_) => meeting::Entity::update(row).exec(conn).await?,
        None => match meeting::Entity::insert(row).exec_with_returning(conn).await {
            Ok(m) => m,
            // Another process inserted it a moment ago: retry, and the update path runs.
            Err(e) if is_unique_violation(&e) => return Err(AppError::new(503, crate::error::DB_CONFLICT, "concurrent insert")),
            Err(e) => return Err(e.into()),
        },
    };
    if before != Some(after) {
        announce(txn, &saved).await?;
    }
    Ok(None)
}

async fn apply_no_show<C: ConnectionTrait>(conn: &C, invitee_uri: &str, no_show: bool, at: i64) -> AppResult<Option<String>> {
    let found = for_update(meeting::Entity::find().filter(meeting::Column::InviteeUri.eq(invitee_uri)), conn.get_database_backend())
        .one(conn)
        .await?;
    let Some(m) = found else { return Ok(Some("no meeting for this invitee yet".into())) };
    if m.no_show_at.is_some_and(|prev| prev > at) {
        return Ok(None); // an older fact arriving late
    }
    meeting::Entity::update_many()
        .col_expr(meeting::Column::NoShow, Expr::value(no_show))
        .col_expr(meeting::Column::NoShowAt, Expr::value(at))
        .col_expr(meeting::Column::UpdatedAt, Expr::value(now_ms()))
        .filter(meeting::Column::Id.eq(m.id))
        .exec(conn)
        .await?;
    changes::record(conn, CHANNEL, &serde_json::json!({"meeting": m.id, "no_show": no_show})).await?;
    Ok(None)
}

/// Tells open pages and the broker (`meeting:scheduled|canceled|rescheduled`).
async fn announce(txn: &WriteTxn, m: &meeting::Model) -> AppResult<()> {
    changes::record(&**txn, CHANNEL, &serde_json::json!({"meeting": m.id, "event_uri": m.event_uri, "status": m.status})).await?;
    let event = serde_json::json!({
        "event_uri": m.event_uri, "name": m.name, "status": m.status,
        "invitee": {"name": m.invitee_name, "email": m.invitee_email},
        "host_email": m.host_email,
        "start_time": crate::platform::time::to_rfc3339(m.start_time),
        "end_time": crate::platform::time::to_rfc3339(m.end_time),
        "cancel_reason": m.cancel_reason, "rescheduled_to": m.rescheduled_to, "rescheduled_from": m.rescheduled_from,
    });
    txn.publish(&format!("meeting:{}", m.status), &event).await?;
    Ok(())
}

/// `2026-11-20` or a full ISO-8601 time.
fn parse_bound(field: &str, raw: Option<&str>) -> AppResult<Option<i64>> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
    parse_rfc3339(raw)
        .or_else(|| parse_rfc3339(&format!("{raw}T00:00:00Z")))
        .map(Some)
        .ok_or_else(|| AppError::invalid(field, format!("{field} must be a date (2026-11-20) or an ISO-8601 time")))
}

/// Meetings matching the filter, by start time, each with its reschedule links resolved.
#[tracing::instrument(skip(db))]
pub async fn list(db: &Db, _caller: &crate::accounts::Caller, filter: &MeetingFilter) -> AppResult<Vec<MeetingView>> {
    let from = parse_bound("from", filter.from.as_deref())?;
    let to = parse_bound("to", filter.to.as_deref())?;
    let mut q = meeting::Entity::find();
    if let Some(status) = filter.status.as_deref().filter(|s| !s.is_empty()) {
        let status = MeetingStatus::parse(status)
            .ok_or_else(|| AppError::invalid("status", "status is scheduled, canceled or rescheduled"))?;
        q = q.filter(meeting::Column::Status.eq(status));
    }
    if let Some(host) = filter.host.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        q = q.filter(meeting::Column::HostEmail.eq(host));
    }
    if let Some(from) = from {
        q = q.filter(meeting::Column::StartTime.gte(from));
    }
    if let Some(to) = to {
        q = q.filter(meeting::Column::StartTime.lt(to));
    }
    let limit = filter.limit.unwrap_or(200).clamp(1, 1000);
    let rows = q.order_by_asc(meeting::Column::StartTime).order_by_asc(meeting::Column::Id).limit(limit).all(&db.conn).await?;
    let linked: Vec<String> = rows.iter().flat_map(|m| [m.rescheduled_to.clone(), m.rescheduled_from.clone()]).flatten().collect();
    let targets: HashMap<String, (i64, i64)> = meeting::Entity::find()
        .filter(meeting::Column::EventUri.is_in(linked))
        .all(&db.conn)
        .await?
        .into_iter()
        .map(|m| (m.event_uri, (m.id, m.start_time)))
        .collect();
    let link = |uri: Option<String>| {
        uri.map(|event_uri| {
            let found = targets.get(&event_uri).copied();
            MeetingLink { id: found.map(|f| f.0), start_time: found.map(|f| f.1), event_uri }
        })
    };
    Ok(rows
        .into_iter()
        .map(|m| MeetingView {
            id: m.id,
            name: m.name,
            status: m.status,
            invitee_name: m.invitee_name,
            invitee_email: m.invitee_email,
            host_email: m.host_email,
            start_time: m.start_time,
            end_time: m.end_time,
            location: m.location,
            canceled_by: m.canceled_by,
            cancel_reason: m.cancel_reason,
            no_show: m.no_show,
            rescheduled_to: link(m.rescheduled_to),
            rescheduled_from: link(m.rescheduled_from),
            event_uri: m.event_uri,
        })
        .collect())
}
